//! Segment-compatible endpoints: `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`,
//! `/v1/batch`, accepting the Segment HTTP Tracking API payloads, so Segment's own libraries
//! (analytics.js, analytics-node, the mobile SDKs) can send to the collector unchanged.
//!
//! Each Segment message is mapped onto the event contract and then takes the same path as a
//! native event ([`crate::api::ingest`]): validation, enrichment, durable queueing, dead
//! letters. The mapping:
//!
//! | Segment | contract |
//! |---|---|
//! | `messageId` | `event_id` (a UUID as is; any other id becomes a UUIDv5 of source and id, so retries stay idempotent) |
//! | `anonymousId`, `userId`, `timestamp`, `sentAt` | `anonymous_id`, `user_id`, `event_time`, `sent_at` |
//! | `track` "Product Viewed" / "Product Added" / "Product Removed" | `product_view` / `add_to_cart` / `remove_from_cart` with the product properties |
//! | `track` "Checkout Started" | `begin_checkout` (`order_id`, `revenue`/`value`) |
//! | `track` "Order Completed" | one `purchase` per line of `products` (line revenue = price × quantity), or one with the order's `revenue`/`total` when there are no lines |
//! | `track` "Products Searched" | `search` (`query`) |
//! | any other `track` | `custom`, `event_name` = the event |
//! | `page`, `screen` | `page_view` (screen: the name as the title) |
//! | `identify` | `custom` event `identify` linking `anonymousId` and `userId`; traits in `properties` |
//! | `context.userAgent`, `locale`, `app`, `screen`, `library`, `campaign`, `page`, `device.type`/`os.name` | the contract's context, page and platform |
//!
//! Properties that have no column stay in `properties`. Segment accepts any properties, so a
//! value the contract refuses is kept under `properties.unmapped` instead of costing the
//! message, and an e-commerce event missing what its type requires becomes a `custom` event
//! (see [`repair`]). Limits are Segment's: 32 KB per message,
//! 500 KB per batch. The write key comes as the Basic-auth username (as Segment's libraries
//! send it), the `X-Write-Key` header, or the payload's `writeKey` field.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use event_model::FieldError;
use event_model::tracker::{Batch, BatchItem};
use serde_json::{Map, Value, json};

use crate::api::{authenticate, check_content_type, client_ip, decode_body, ingest, read_body};
use crate::enrich::RequestContext;
use crate::error::{ApiError, IndexedFieldError};
use crate::state::AppState;

/// The kind of Segment call a route takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `/v1/track`
    Track,
    /// `/v1/page`
    Page,
    /// `/v1/screen`
    Screen,
    /// `/v1/identify`
    Identify,
    /// `/v1/batch`
    Batch,
}

const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7365_676d_656e_742d_6d65_7373_6167_6531);

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn set(target: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        target.insert(key.to_owned(), value);
    }
}

fn product_of(item: &Map<String, Value>) -> Value {
    let mut product = Map::new();
    set(
        &mut product,
        "product_id",
        item.get("product_id").or(item.get("sku")).or(item.get("id")).and_then(text).map(Value::from),
    );
    set(
        &mut product,
        "category_code",
        item.get("category")
            .and_then(text)
            .map(|c| Value::from(c.to_lowercase().replace(['/', '>'], ".").replace(' ', "_"))),
    );
    set(&mut product, "brand", item.get("brand").and_then(text).map(Value::from));
    set(&mut product, "price", item.get("price").cloned());
    set(&mut product, "currency", item.get("currency").and_then(text).map(|c| Value::from(c.to_uppercase())));
    set(&mut product, "quantity", item.get("quantity").cloned());
    Value::Object(product)
}

const PRODUCT_KEYS: &[&str] = &[
    "product_id",
    "sku",
    "id",
    "category",
    "brand",
    "price",
    "currency",
    "quantity",
    "name",
    "variant",
    "url",
    "image_url",
    "position",
    "coupon",
];

fn leftover(properties: &Map<String, Value>, used: &[&str]) -> Option<Value> {
    let rest: Map<String, Value> =
        properties.iter().filter(|(k, _)| !used.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!rest.is_empty()).then_some(Value::Object(rest))
}

/// Maps one Segment message to contract events (several for a multi-line order).
pub fn map_message(message: &Value, call: Call, source_id: &str) -> Result<Vec<Value>, FieldError> {
    let object = message
        .as_object()
        .ok_or_else(|| FieldError::new("message", "invalid", "a Segment message is a JSON object"))?;
    let kind = match call {
        Call::Batch => object.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
        Call::Track => "track".into(),
        Call::Page => "page".into(),
        Call::Screen => "screen".into(),
        Call::Identify => "identify".into(),
    };
    let properties = object.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let context = object.get("context").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut base = Map::new();
    if let Some(id) = object.get("messageId").and_then(text) {
        let id = uuid::Uuid::parse_str(&id)
            .unwrap_or_else(|_| uuid::Uuid::new_v5(&NAMESPACE, format!("{source_id}\0{id}").as_bytes()));
        base.insert("event_id".into(), Value::from(id.to_string()));
    }
    set(&mut base, "anonymous_id", object.get("anonymousId").and_then(text).map(Value::from));
    set(&mut base, "user_id", object.get("userId").and_then(text).map(Value::from));
    set(&mut base, "event_time", object.get("timestamp").or(object.get("originalTimestamp")).cloned());
    set(&mut base, "sent_at", object.get("sentAt").cloned());

    // Context.
    let mut ours = Map::new();
    let os = context.get("os").and_then(|o| o.get("name")).and_then(Value::as_str).unwrap_or_default().to_lowercase();
    let device =
        context.get("device").and_then(|d| d.get("type")).and_then(Value::as_str).unwrap_or_default().to_lowercase();
    let platform = if os.contains("ios") || device == "ios" {
        "ios"
    } else if os.contains("android") || device == "android" {
        "android"
    } else if context.contains_key("userAgent") || context.contains_key("page") {
        "web"
    } else {
        "server"
    };
    ours.insert("platform".into(), Value::from(platform));
    set(&mut ours, "user_agent", context.get("userAgent").and_then(text).map(Value::from));
    set(&mut ours, "locale", context.get("locale").and_then(text).map(Value::from));
    if let Some(app) = context.get("app").and_then(Value::as_object) {
        ours.insert(
            "app".into(),
            json!({"name": app.get("name").and_then(text), "version": app.get("version").and_then(text)}),
        );
    }
    if let Some(library) = context.get("library").and_then(Value::as_object) {
        ours.insert(
            "library".into(),
            json!({"name": library.get("name").and_then(text), "version": library.get("version").and_then(text)}),
        );
    }
    if let Some(screen) = context.get("screen").and_then(Value::as_object) {
        ours.insert("screen".into(), json!({"width": screen.get("width"), "height": screen.get("height")}));
    }
    if let Some(campaign) = context.get("campaign").and_then(Value::as_object) {
        let mut c = Map::new();
        for key in ["source", "medium", "name", "term", "content"] {
            set(&mut c, key, campaign.get(key).and_then(text).map(Value::from));
        }
        ours.insert("campaign".into(), Value::Object(c));
    }
    strip_nulls(&mut ours);
    base.insert("context".into(), Value::Object(ours));

    // Page: from the page call's properties, else the context's page.
    let page_source = if matches!(kind.as_str(), "page") {
        Some(&properties)
    } else {
        context.get("page").and_then(Value::as_object)
    };
    if let Some(page_fields) = page_source {
        let mut page = Map::new();
        for key in ["url", "path", "referrer", "title"] {
            set(&mut page, key, page_fields.get(key).and_then(text).map(Value::from));
        }
        if !page.is_empty() {
            base.insert("page".into(), Value::Object(page));
        }
    }

    let mut events = Vec::new();
    let mut event = base.clone();
    match kind.as_str() {
        "track" => {
            let name = object
                .get("event")
                .and_then(text)
                .ok_or_else(|| FieldError::new("event", "required", "track calls need an event name"))?;
            match name.as_str() {
                "Product Viewed" | "Product Added" | "Product Removed" => {
                    let event_type = match name.as_str() {
                        "Product Viewed" => "product_view",
                        "Product Added" => "add_to_cart",
                        _ => "remove_from_cart",
                    };
                    event.insert("event_type".into(), Value::from(event_type));
                    event.insert("product".into(), product_of(&properties));
                    set(&mut event, "properties", leftover(&properties, PRODUCT_KEYS));
                }
                "Checkout Started" => {
                    event.insert("event_type".into(), Value::from("begin_checkout"));
                    let mut order = Map::new();
                    set(&mut order, "order_id", properties.get("order_id").and_then(text).map(Value::from));
                    set(&mut order, "revenue", properties.get("revenue").or(properties.get("value")).cloned());
                    set(
                        &mut order,
                        "currency",
                        properties.get("currency").and_then(text).map(|c| Value::from(c.to_uppercase())),
                    );
                    if !order.is_empty() {
                        event.insert("order".into(), Value::Object(order));
                    }
                    set(
                        &mut event,
                        "properties",
                        leftover(&properties, &["order_id", "revenue", "value", "currency", "products"]),
                    );
                }
                "Order Completed" => {
                    let order_id = properties.get("order_id").and_then(text);
                    let currency = properties.get("currency").and_then(text).map(|c| c.to_uppercase());
                    let lines = properties.get("products").and_then(Value::as_array).cloned().unwrap_or_default();
                    let rest =
                        leftover(&properties, &["order_id", "revenue", "total", "value", "currency", "products"]);
                    if lines.is_empty() {
                        event.insert("event_type".into(), Value::from("purchase"));
                        event.insert("order".into(), json!({"order_id": order_id, "revenue": properties.get("revenue").or(properties.get("total")).cloned(), "currency": currency}));
                        set(&mut event, "properties", rest);
                    } else {
                        let event_id = event.remove("event_id");
                        for (index, line) in lines.iter().enumerate() {
                            let line = line.as_object().cloned().unwrap_or_default();
                            let mut this = event.clone();
                            if let Some(Value::String(id)) = &event_id {
                                let line_id = if index == 0 {
                                    id.clone()
                                } else {
                                    uuid::Uuid::new_v5(&NAMESPACE, format!("{id}\0{index}").as_bytes()).to_string()
                                };
                                this.insert("event_id".into(), Value::from(line_id));
                            }
                            // Exact decimal line revenue: price × quantity, never a binary float.
                            let price =
                                line.get("price").and_then(text).and_then(|p| event_model::Money::parse(&p).ok());
                            let quantity = line.get("quantity").and_then(Value::as_i64).unwrap_or(1);
                            let revenue = price.map(|p| {
                                event_model::Money::from(p.as_decimal() * rust_decimal::Decimal::from(quantity))
                            });
                            this.insert("event_type".into(), Value::from("purchase"));
                            let mut product = product_of(&line);
                            if product.get("currency").is_none()
                                && let (Some(c), Some(p)) = (&currency, product.as_object_mut())
                            {
                                p.insert("currency".into(), Value::from(c.clone()));
                            }
                            this.insert("product".into(), product);
                            this.insert("order".into(), json!({"order_id": order_id, "revenue": revenue.map(|r| r.to_string()).unwrap_or_else(|| "0".into()), "currency": currency}));
                            if index == 0 {
                                set(&mut this, "properties", rest.clone());
                            }
                            events.push(this);
                        }
                    }
                }
                "Products Searched" => {
                    event.insert("event_type".into(), Value::from("search"));
                    set(&mut event, "search", properties.get("query").and_then(text).map(|q| json!({"query": q})));
                    set(&mut event, "properties", leftover(&properties, &["query"]));
                }
                other => {
                    event.insert("event_type".into(), Value::from("custom"));
                    event.insert("event_name".into(), Value::from(other));
                    set(&mut event, "properties", (!properties.is_empty()).then(|| Value::Object(properties.clone())));
                }
            }
        }
        "page" | "screen" => {
            event.insert("event_type".into(), Value::from("page_view"));
            if let Some(name) = object.get("name").and_then(text) {
                let page = event.entry("page").or_insert_with(|| json!({}));
                if page.get("title").is_none() {
                    page["title"] = Value::from(name);
                }
            }
            set(&mut event, "properties", leftover(&properties, &["url", "path", "referrer", "title", "search"]));
        }
        "identify" => {
            event.insert("event_type".into(), Value::from("custom"));
            event.insert("event_name".into(), Value::from("identify"));
            set(
                &mut event,
                "properties",
                object
                    .get("traits")
                    .filter(|t| t.as_object().is_some_and(|o| !o.is_empty()))
                    .map(|t| json!({"traits": t})),
            );
        }
        other => {
            return Err(FieldError::new(
                "type",
                "unsupported",
                format!("Segment {other:?} calls are not supported; send track, page, screen or identify"),
            ));
        }
    }
    if events.is_empty() {
        events.push(event);
    }
    Ok(events.into_iter().map(Value::Object).collect())
}

/// Segment accepts any properties, so a mapped value the contract refuses (a price that is not a
/// number, a bad currency code, an over-long locale) must not cost the message: the value moves
/// to `properties.unmapped` under its field path, and an e-commerce event missing what its type
/// requires (a product id, an order id) is kept as a `custom` event with the Segment name. Only
/// what no mapping can fix (no anonymousId or userId at all) is rejected.
fn repair(mut event: Value, segment_name: &str, limits: &event_model::Limits) -> Value {
    for _ in 0..4 {
        let Err(errors) = event_model::tracker::parse_event(&event.to_string(), limits) else {
            return event;
        };
        let mut changed = false;
        for error in errors {
            let path: Vec<&str> = error.field.split('.').collect();
            let requirement = error.code == "required" && error.field != "anonymous_id";
            if requirement {
                if event["event_type"] != "custom" {
                    event["event_type"] = Value::from("custom");
                    event["event_name"] =
                        Value::from(segment_name.chars().filter(|c| !c.is_control()).take(128).collect::<String>());
                    changed = true;
                }
                continue;
            }
            if path.len() < 2 || matches!(path[0], "event" | "event_type" | "anonymous_id" | "user_id" | "body") {
                continue;
            }
            let Some(parent) = event.pointer_mut(&format!("/{}", path[..path.len() - 1].join("/"))) else { continue };
            let Some(removed) = parent.as_object_mut().and_then(|o| o.remove(path[path.len() - 1])) else { continue };
            let properties = event.as_object_mut().map(|o| o.entry("properties").or_insert_with(|| json!({})));
            if let Some(Value::Object(properties)) = properties {
                let unmapped = properties.entry("unmapped").or_insert_with(|| json!({}));
                if let Some(unmapped) = unmapped.as_object_mut() {
                    unmapped.insert(error.field.clone(), removed);
                }
            }
            changed = true;
        }
        if !changed {
            return event;
        }
    }
    event
}

fn strip_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
    for value in map.values_mut() {
        if let Value::Object(inner) = value {
            strip_nulls(inner);
        }
    }
    map.retain(|_, v| !matches!(v, Value::Object(o) if o.is_empty()));
}

/// Handles one Segment route.
pub async fn handle(
    state: AppState,
    call: Call,
    connect: Option<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = Utc::now();
    check_content_type(&headers)?;
    let max_body = state.limits().max_batch_bytes;
    let raw = read_body(body, max_body).await?;
    let decoded = decode_body(&headers, raw, max_body)?;
    let body_text = std::str::from_utf8(&decoded).map_err(|e| ApiError::Invalid {
        message: format!("the body is not UTF-8: {e}"),
        errors: vec![IndexedFieldError::new(None, FieldError::new("body", "encoding", e.to_string()))],
    })?;
    let payload: Value = serde_json::from_str(body_text).map_err(|e| {
        let message = e.to_string();
        let (field, code) = if crate::nesting::is_too_deep(&message) {
            (crate::nesting::too_deep(body_text, crate::api::MAX_SCAN_DEPTH).unwrap_or_else(|| "body".into()), "too_deep")
        } else {
            ("body".to_owned(), "malformed")
        };
        ApiError::Invalid {
            message: format!("the body is not JSON: {message}"),
            errors: vec![IndexedFieldError::new(None, FieldError::new(&field, code, message))],
        }
    })?;
    let presents_header =
        headers.contains_key(crate::api::WRITE_KEY_HEADER) || headers.contains_key(header::AUTHORIZATION);
    let source_id = if presents_header {
        authenticate(&state, &headers)?
    } else {
        payload
            .get("writeKey")
            .and_then(Value::as_str)
            .and_then(|key| state.source_for(key))
            .ok_or(ApiError::Unauthorized)?
    };
    let messages: Vec<Value> = match call {
        Call::Batch => payload.get("batch").and_then(Value::as_array).cloned().ok_or_else(|| ApiError::Invalid {
            message: "a batch call needs a \"batch\" array".into(),
            errors: vec![IndexedFieldError::new(
                None,
                FieldError::new("batch", "required", "a batch call needs a \"batch\" array"),
            )],
        })?,
        _ => vec![payload.clone()],
    };
    if messages.len() > state.limits().max_batch_events {
        return Err(ApiError::TooLarge(format!("a batch holds at most {} messages", state.limits().max_batch_events)));
    }
    let batch_sent_at = payload.get("sentAt").and_then(Value::as_str).and_then(|t| t.parse().ok());
    let limits = state.limits();
    // Each message's text (dead-lettered as sent when rejected) and the tracker events it maps
    // to, as JSON text; the parsed events borrow these strings.
    let mut texts: Vec<(String, Result<Vec<String>, FieldError>)> = Vec::with_capacity(messages.len());
    for message in &messages {
        let raw = message.to_string();
        if raw.len() > limits.max_event_bytes {
            let error = FieldError::new(
                "message",
                "too_large",
                format!("{} bytes; a message may be at most {} bytes", raw.len(), limits.max_event_bytes),
            );
            texts.push((raw, Err(error)));
            continue;
        }
        let mapped = map_message(message, call, &source_id).map(|events| {
            let name = message.get("event").and_then(text).unwrap_or_else(|| "segment".into());
            events.into_iter().map(|event| repair(event, &name, &limits).to_string()).collect()
        });
        texts.push((raw, mapped));
    }
    let mut items = Vec::new();
    for (raw, mapped) in &texts {
        match mapped {
            Ok(events) => items.extend(
                events
                    .iter()
                    .map(|event| BatchItem { raw, outcome: event_model::tracker::parse_event(event, &limits) }),
            ),
            Err(error) => items.push(BatchItem { raw, outcome: Err(vec![error.clone()]) }),
        }
    }
    let request = RequestContext {
        source_id,
        received_at,
        batch_sent_at: None,
        client_ip: client_ip(&headers, connect, state.forwarded_for_hops()),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        user_agent_facts: None,
    };
    let response = ingest(&state, request, Batch { sent_at: batch_sent_at, items }).await?;
    if response.accepted == 0 {
        return Err(ApiError::Invalid {
            message: "no message in the request is valid; see errors".into(),
            errors: response.rejected,
        });
    }
    Ok((StatusCode::OK, Json(json!({"success": true, "accepted": response.accepted, "event_ids": response.event_ids, "rejected": response.rejected}))).into_response())
}

macro_rules! route {
    ($name:ident, $call:expr) => {
        /// A Segment route.
        pub async fn $name(
            State(state): State<AppState>,
            connect: Option<Extension<ConnectInfo<SocketAddr>>>,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Response, ApiError> {
            handle(state, $call, connect.map(|Extension(ConnectInfo(peer))| peer), headers, body).await
        }
    };
}

route!(track, Call::Track);
route!(page, Call::Page);
route!(screen, Call::Screen);
route!(identify, Call::Identify);
route!(batch, Call::Batch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_completed_becomes_one_purchase_per_line_with_line_revenue() {
        let message = json!({"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "ajs-123",
            "timestamp": "2026-11-24T10:00:00Z",
            "properties": {"order_id": "o-9", "total": 49.5, "currency": "eur", "coupon": "BF",
                "products": [{"product_id": "p1", "price": 10.25, "quantity": 2, "category": "Electronics/Phones"},
                             {"sku": "p2", "price": "29", "quantity": 1}]}});
        let events = map_message(&message, Call::Batch, "shop").unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["event_type"], "purchase");
        let revenue = |i: usize| event_model::Money::parse(events[i]["order"]["revenue"].as_str().unwrap()).unwrap();
        assert_eq!(revenue(0), event_model::Money::parse("20.5").unwrap());
        assert_eq!(revenue(1), event_model::Money::parse("29").unwrap());
        assert_eq!(events[0]["product"]["category_code"], "electronics.phones");
        assert_eq!(events[1]["product"]["product_id"], "p2");
        assert_ne!(events[0]["event_id"], events[1]["event_id"]);
        assert_eq!(events[0]["properties"], json!({"coupon": "BF"}));
        let again = map_message(&message, Call::Batch, "shop").unwrap();
        assert_eq!(events[0]["event_id"], again[0]["event_id"], "ids are stable across retries");
        for event in events {
            let text = event.to_string();
            let parsed = event_model::tracker::parse_event(&text, &event_model::Limits::default());
            assert!(parsed.is_ok(), "{event}: {parsed:?}");
        }
    }

    #[test]
    fn ecommerce_events_map_to_the_contract_types() {
        let cases = [
            ("Product Viewed", "product_view"),
            ("Product Added", "add_to_cart"),
            ("Product Removed", "remove_from_cart"),
            ("Checkout Started", "begin_checkout"),
            ("Products Searched", "search"),
            ("Newsletter Signed Up", "custom"),
        ];
        for (name, expected) in cases {
            let message = json!({"event": name, "anonymousId": "a", "properties": {"product_id": "p", "query": "shoes", "price": 3}});
            let events = map_message(&message, Call::Track, "s").unwrap();
            assert_eq!(events[0]["event_type"], expected, "{name}");
            let text = events[0].to_string();
            let parsed = event_model::tracker::parse_event(&text, &event_model::Limits::default());
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
    }

    #[test]
    fn page_screen_and_identify_calls_map_and_context_carries_over() {
        let page = json!({"anonymousId": "a", "name": "Home", "properties": {"url": "https://shop.example/?utm_source=x", "path": "/"},
            "context": {"userAgent": "Mozilla/5.0", "locale": "en-GB", "library": {"name": "analytics.js", "version": "2.0"}}});
        let events = map_message(&page, Call::Page, "s").unwrap();
        assert_eq!(events[0]["event_type"], "page_view");
        assert_eq!(events[0]["page"]["title"], "Home");
        assert_eq!(events[0]["context"]["platform"], "web");
        assert_eq!(events[0]["context"]["library"]["name"], "analytics.js");
        let screen = json!({"userId": "u", "name": "Cart", "context": {"os": {"name": "iOS"}, "app": {"name": "Shop", "version": "5"}}});
        assert_eq!(map_message(&screen, Call::Screen, "s").unwrap()[0]["context"]["platform"], "ios");
        let identify = json!({"userId": "u", "anonymousId": "a", "traits": {"plan": "gold"}});
        let events = map_message(&identify, Call::Identify, "s").unwrap();
        assert_eq!(events[0]["event_name"], "identify");
        assert_eq!(events[0]["user_id"], "u");
        assert_eq!(events[0]["anonymous_id"], "a");
    }

    #[test]
    fn values_the_contract_refuses_are_kept_in_properties_and_incomplete_events_become_custom() {
        let limits = event_model::Limits::default();
        let message = json!({"event": "Product Viewed", "anonymousId": "a", "properties": {"product_id": "p", "price": "cheap", "currency": "euros"}});
        let event = repair(map_message(&message, Call::Track, "s").unwrap().remove(0), "Product Viewed", &limits);
        assert_eq!(event["event_type"], "product_view");
        assert_eq!(event["properties"]["unmapped"]["product.price"], "cheap");
        assert!(event_model::tracker::parse_event(&event.to_string(), &limits).is_ok());
        let message = json!({"event": "Order Completed", "userId": "u", "properties": {"currency": "EUR"}});
        let event = repair(map_message(&message, Call::Track, "s").unwrap().remove(0), "Order Completed", &limits);
        assert_eq!(event["event_type"], "custom");
        assert_eq!(event["event_name"], "Order Completed");
        assert!(event_model::tracker::parse_event(&event.to_string(), &limits).is_ok());
    }

    #[test]
    fn unsupported_calls_are_named() {
        let error = map_message(&json!({"type": "alias", "userId": "u"}), Call::Batch, "s").unwrap_err();
        assert_eq!(error.field, "type");
    }
}
