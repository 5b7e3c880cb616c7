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
                .filter(|name| !event_name(name).is_empty())
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
                            // A product past a decimal's range (±7.9×10²⁸) has no revenue:
                            // the purchase then lacks one and is kept as a custom event.
                            let revenue = price.map(|p| {
                                p.as_decimal()
                                    .checked_mul(rust_decimal::Decimal::from(quantity))
                                    .map(event_model::Money::from)
                            });
                            this.insert("event_type".into(), Value::from("purchase"));
                            let mut product = product_of(&line);
                            if product.get("currency").is_none()
                                && let (Some(c), Some(p)) = (&currency, product.as_object_mut())
                            {
                                p.insert("currency".into(), Value::from(c.clone()));
                            }
                            this.insert("product".into(), product);
                            let revenue = match revenue {
                                None => Some("0".to_owned()),
                                Some(line) => line.map(|r| r.to_string()),
                            };
                            this.insert(
                                "order".into(),
                                json!({"order_id": order_id, "revenue": revenue, "currency": currency}),
                            );
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
                    event.insert("event_name".into(), Value::from(event_name(other)));
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
/// requires (a product id, an order id) is kept as a `custom` event with the Segment name;
/// properties nested deeper than the contract allows are kept as JSON text under
/// `properties.properties_json`. Only what no mapping can fix (no anonymousId or userId at all,
/// properties over the size limit) is rejected.
fn repair(mut event: Value, segment_name: &str, limits: &event_model::Limits) -> Value {
    // serde reports one type error a pass, so a pass per field at most: each pass moves a value
    // or retypes the event, and an event has fewer than 64 fields.
    for _ in 0..64 {
        let Err(errors) = event_model::tracker::parse_event(&event.to_string(), limits) else {
            return event;
        };
        let mut changed = false;
        for error in errors {
            let path: Vec<&str> = error.field.split('.').collect();
            if error.field == "properties" && error.code == "too_deep" {
                // Nested deeper than the contract keeps: kept whole, as JSON text.
                if let Some(properties) = event.get_mut("properties") {
                    *properties = json!({"properties_json": properties.to_string()});
                    changed = true;
                }
                continue;
            }
            let requirement = error.code == "required" && error.field != "anonymous_id";
            if requirement {
                if event["event_type"] != "custom" {
                    event["event_type"] = Value::from("custom");
                    event["event_name"] = Value::from(event_name(segment_name));
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

/// A Segment event name as the contract's `event_name`: Segment takes any text, the contract
/// no control characters and at most 128 characters.
fn event_name(segment_name: &str) -> String {
    segment_name.chars().filter(|c| !c.is_control()).take(128).collect()
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

/// The body of a Segment request as JSON.
pub fn parse_payload(body: &[u8]) -> Result<Value, ApiError> {
    let body_text = std::str::from_utf8(body).map_err(|e| ApiError::Invalid {
        message: format!("the body is not UTF-8: {e}"),
        errors: vec![IndexedFieldError::new(None, FieldError::new("body", "encoding", e.to_string()))],
    })?;
    serde_json::from_str(body_text).map_err(|e| {
        let message = e.to_string();
        let (field, code) = if crate::nesting::is_too_deep(&message) {
            (
                crate::nesting::too_deep(body_text, crate::api::MAX_SCAN_DEPTH).unwrap_or_else(|| "body".into()),
                "too_deep",
            )
        } else {
            ("body".to_owned(), "malformed")
        };
        ApiError::Invalid {
            message: format!("the body is not JSON: {message}"),
            errors: vec![IndexedFieldError::new(None, FieldError::new(&field, code, message))],
        }
    })
}

/// One Segment message, mapped: its text as sent (dead-lettered as it is when rejected) and the
/// contract events it maps to, as JSON text, or why it maps to none.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedMessage {
    /// The message's JSON.
    pub raw: String,
    /// The tracker events' JSON, repaired (see [`repair`]), or the reason there are none.
    pub events: Result<Vec<String>, FieldError>,
}

/// Splits a Segment payload into its messages (a batch's `batch` array, or the payload itself)
/// and maps each one: everything a Segment route does between reading the body and validating
/// the events, with no I/O, so it can be tested on its own.
pub fn decode(
    payload: &Value,
    call: Call,
    source_id: &str,
    limits: &event_model::Limits,
) -> Result<Vec<MappedMessage>, ApiError> {
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
    if messages.len() > limits.max_batch_events {
        return Err(ApiError::TooLarge(format!("a batch holds at most {} messages", limits.max_batch_events)));
    }
    let mut mapped = Vec::with_capacity(messages.len());
    for message in &messages {
        let raw = message.to_string();
        if raw.len() > limits.max_event_bytes {
            let error = FieldError::new(
                "message",
                "too_large",
                format!("{} bytes; a message may be at most {} bytes", raw.len(), limits.max_event_bytes),
            );
            mapped.push(MappedMessage { raw, events: Err(error) });
            continue;
        }
        let events = map_message(message, call, source_id).map(|events| {
            let name = message.get("event").and_then(text).unwrap_or_else(|| "segment".into());
            events.into_iter().map(|event| repair(event, &name, limits).to_string()).collect()
        });
        mapped.push(MappedMessage { raw, events });
    }
    Ok(mapped)
}

/// The mapped messages as the batch [`ingest`] takes: each event parsed and validated, borrowing
/// the mapped text.
pub fn batch_items<'a>(messages: &'a [MappedMessage], limits: &event_model::Limits) -> Vec<BatchItem<'a>> {
    let mut items = Vec::new();
    for message in messages {
        match &message.events {
            Ok(events) => items.extend(events.iter().map(|event| BatchItem {
                raw: &message.raw,
                outcome: event_model::tracker::parse_event(event, limits),
            })),
            Err(error) => items.push(BatchItem { raw: &message.raw, outcome: Err(vec![error.clone()]) }),
        }
    }
    items
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
    let payload = parse_payload(&decoded)?;
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
    let limits = state.limits();
    let batch_sent_at = payload.get("sentAt").and_then(Value::as_str).and_then(|t| t.parse().ok());
    let messages = decode(&payload, call, &source_id, &limits)?;
    let items = batch_items(&messages, &limits);
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

    /// Found by `proptests::messages_map_to_events_serde_reads_the_same_way`: a track call
    /// named with a control character (or more than 128 characters) became a custom event the
    /// contract refuses, so the message was lost although it names its user.
    #[test]
    fn track_names_the_contract_refuses_are_cleaned_not_refused() {
        let limits = event_model::Limits::default();
        for (name, expected) in [("tab\there", "tabhere".to_owned()), (&"n".repeat(200), "n".repeat(128))] {
            let message = json!({"type": "track", "event": name, "userId": "-"});
            let mapped = decode(&message, Call::Track, "s", &limits).unwrap();
            let event = &mapped[0].events.as_ref().unwrap()[0];
            let parsed = event_model::tracker::parse_event(event, &limits).unwrap();
            assert_eq!(parsed.event_name.as_deref(), Some(expected.as_str()));
        }
        let unnamed = map_message(&json!({"type": "track", "event": "\u{1}", "userId": "-"}), Call::Track, "s");
        assert_eq!(unnamed.unwrap_err().field, "event");
    }

    /// Found by `proptests::messages_map_to_events_serde_reads_the_same_way`: `repair` gave up
    /// after four passes, each fixing one type error, so a message with four bad values kept an
    /// e-commerce type it did not qualify for, and was refused.
    #[test]
    fn a_message_with_many_bad_values_is_repaired_whole() {
        let limits = event_model::Limits::default();
        let message = json!({"type": "track", "event": "Product Viewed", "anonymousId": "-",
            "context": {"screen": {"height": -2.7e-309, "width": -3.6e-121}},
            "properties": {"price": "", "quantity": 1.18e-308}});
        let mapped = decode(&json!({"batch": [message]}), Call::Batch, "s", &limits).unwrap();
        let event = &mapped[0].events.as_ref().unwrap()[0];
        let parsed = event_model::tracker::parse_event(event, &limits).unwrap();
        assert_eq!(parsed.event_type, event_model::EventType::Custom);
        assert_eq!(parsed.event_name.as_deref(), Some("Product Viewed"));
    }

    /// Found by `proptests::messages_map_to_events_serde_reads_the_same_way`: price × quantity
    /// of an order line past a decimal's range panicked (`Multiplication overflowed`).
    #[test]
    fn an_order_line_too_large_for_a_decimal_is_kept_without_a_panic() {
        let limits = event_model::Limits::default();
        let message = json!({"type": "track", "event": "Order Completed", "userId": "u",
            "properties": {"order_id": "o", "products": [{"product_id": "p", "price": "79228162514264337593543950335", "quantity": 2}]}});
        let mapped = decode(&message, Call::Track, "s", &limits).unwrap();
        let event = &mapped[0].events.as_ref().unwrap()[0];
        let parsed = event_model::tracker::parse_event(event, &limits).unwrap();
        assert_eq!(parsed.event_type, event_model::EventType::Custom, "no revenue, so not a purchase");
        assert_eq!(
            parsed.product.unwrap().price,
            Some(event_model::Money::parse("79228162514264337593543950335").unwrap())
        );
    }

    /// Found by `proptests::messages_map_to_events_serde_reads_the_same_way`: properties nested
    /// deeper than the contract allows (an order line's price `[[[]]]`) cost the whole message.
    #[test]
    fn properties_nested_too_deep_are_kept_as_json_text() {
        let limits = event_model::Limits::default();
        let message = json!({"type": "track", "event": "Product Viewed", "userId": "0",
            "properties": {"products": [{"price": [[[]]]}]}});
        let mapped = decode(&message, Call::Track, "s", &limits).unwrap();
        let event = &mapped[0].events.as_ref().unwrap()[0];
        let parsed = event_model::tracker::parse_event(event, &limits).unwrap();
        let properties = parsed.properties.unwrap();
        let kept: Value = serde_json::from_str(properties["properties_json"].as_str().unwrap()).unwrap();
        assert_eq!(kept, json!({"products": [{"price": [[[]]]}]}));
    }

    #[test]
    fn unsupported_calls_are_named() {
        let error = map_message(&json!({"type": "alias", "userId": "u"}), Call::Batch, "s").unwrap_err();
        assert_eq!(error.field, "type");
    }

    /// Properties of the Segment decoder over generated messages; `make fuzz` runs them longer.
    mod proptests {
        use event_model::strategies;
        use event_model::tracker::TrackerEvent;
        use proptest::prelude::*;
        use serde::Deserialize;

        use super::*;

        const NAMES: &[&str] = &[
            "Product Viewed",
            "Product Added",
            "Product Removed",
            "Checkout Started",
            "Order Completed",
            "Products Searched",
            "Newsletter Signed Up",
            "",
            "tab\there",
        ];

        /// A value as Segment libraries send anything: mostly plausible, often not.
        fn loose() -> impl Strategy<Value = Value> {
            prop_oneof![
                4 => strategies::money_json().prop_map(|(value, _)| value),
                2 => strategies::int().prop_map(Value::from),
                1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
                1 => Just(Value::from("1e30")),
                1 => Just(Value::from("79228162514264337593543950335")),
                2 => strategies::text().prop_map(Value::from),
                1 => strategies::json_value(),
            ]
        }

        fn line() -> impl Strategy<Value = Value> {
            (
                strategies::maybe(strategies::valid_text(40)),
                strategies::maybe(loose()),
                strategies::maybe(loose()),
                strategies::maybe("[A-Za-z>/ ]{0,20}"),
                strategies::maybe("[a-zA-Z]{0,4}"),
            )
                .prop_map(|(id, price, quantity, category, currency)| {
                    let mut line = Map::new();
                    set(&mut line, "product_id", id.map(Value::from));
                    set(&mut line, "price", price);
                    set(&mut line, "quantity", quantity);
                    set(&mut line, "category", category.map(Value::from));
                    set(&mut line, "currency", currency.map(Value::from));
                    Value::Object(line)
                })
        }

        /// A Segment message of any call type, with the fields the mapping reads set to
        /// plausible and implausible values.
        fn message() -> BoxedStrategy<Value> {
            let ids = (
                strategies::maybe(prop_oneof![
                    strategies::text(),
                    Just("0190a4c2-7b1e-7c3d-8e2f-9a0b1c2d3e4f".to_owned())
                ]),
                strategies::maybe(strategies::valid_text(60)),
                strategies::maybe(strategies::valid_text(60)),
                strategies::maybe(strategies::timestamp().prop_map(|t| serde_json::to_value(t).unwrap())),
                strategies::maybe(strategies::timestamp_text().prop_map(|(text, _)| Value::from(text))),
            );
            let properties = (
                strategies::maybe(line()),
                strategies::maybe(prop::collection::vec(line(), 0..4)),
                strategies::maybe(loose()),
                strategies::maybe(strategies::valid_text(20)),
                strategies::maybe(strategies::valid_text(40)),
                strategies::properties(),
            );
            let context = strategies::maybe((
                strategies::maybe(prop::sample::select(&["iOS", "Android", "Mac OS X", ""][..])),
                strategies::maybe(strategies::valid_text(80)),
                strategies::maybe(prop_oneof![Just("en-GB".to_owned()), strategies::text()]),
                strategies::maybe((loose(), loose())),
                strategies::maybe(strategies::valid_text(40)),
            ));
            // Boxed parts keep the value trees off a debug build's test-thread stack.
            (
                prop::sample::select(&["track", "page", "screen", "identify", "alias", "group"][..]),
                prop::sample::select(NAMES),
                ids.boxed(),
                properties.boxed(),
                context.boxed(),
            )
                .prop_map(|(kind, name, ids, properties, context)| {
                    let (message_id, anonymous_id, user_id, timestamp, sent_at) = ids;
                    let (product, lines, revenue, order_id, query, extra) = properties;
                    let mut props = extra;
                    if let Some(Value::Object(product)) = product {
                        props.extend(product);
                    }
                    set(&mut props, "products", lines.map(Value::from));
                    set(&mut props, "revenue", revenue);
                    set(&mut props, "order_id", order_id.map(Value::from));
                    set(&mut props, "query", query.map(Value::from));
                    let mut message = Map::new();
                    message.insert("type".into(), Value::from(kind));
                    message.insert("event".into(), Value::from(name));
                    message.insert("name".into(), Value::from(name));
                    set(&mut message, "messageId", message_id.map(Value::from));
                    set(&mut message, "anonymousId", anonymous_id.map(Value::from));
                    set(&mut message, "userId", user_id.map(Value::from));
                    set(&mut message, "timestamp", timestamp);
                    set(&mut message, "sentAt", sent_at);
                    message.insert("properties".into(), Value::Object(props.clone()));
                    message.insert("traits".into(), Value::Object(props));
                    if let Some((os, user_agent, locale, screen, library)) = context {
                        let mut context = Map::new();
                        set(&mut context, "os", os.map(|name| json!({"name": name})));
                        set(&mut context, "userAgent", user_agent.map(Value::from));
                        set(&mut context, "locale", locale.map(Value::from));
                        set(&mut context, "screen", screen.map(|(w, h)| json!({"width": w, "height": h})));
                        set(&mut context, "library", library.map(|name| json!({"name": name, "version": "1.0"})));
                        message.insert("context".into(), Value::Object(context));
                    }
                    Value::Object(message)
                })
                .boxed()
        }

        // A generated message costs more to make than to map: few cases in `cargo test`,
        // `make fuzz` runs more.
        proptest! {
            #![proptest_config(strategies::config(64))]

            /// Any Segment message on any route maps without panicking; every event it maps to
            /// is decided as serde's own reading of the same JSON is, and is accepted unless the
            /// message names no one (no anonymousId and no userId) or its call is unsupported.
            #[test]
            fn messages_map_to_events_serde_reads_the_same_way(
                messages in prop::collection::vec(message(), 1..4),
                call in prop::sample::select(&[Call::Batch, Call::Track, Call::Page, Call::Screen, Call::Identify][..]),
            ) {
                let limits = event_model::Limits::default();
                let payload = if call == Call::Batch { json!({"batch": messages}) } else { messages[0].clone() };
                let mapped = decode(&payload, call, "shop", &limits).unwrap();
                for (message, sent) in mapped.iter().zip(&messages) {
                    let events = match &message.events {
                        Ok(events) => events,
                        Err(error) => {
                            prop_assert!(!error.field.is_empty());
                            continue;
                        }
                    };
                    prop_assert!(!events.is_empty());
                    for event in events {
                        let outcome = event_model::tracker::parse_event(event, &limits);
                        let value: Value = serde_json::from_str(event).unwrap();
                        let reference = TrackerEvent::deserialize(&value).map_err(|e| e.to_string()).and_then(|mut reference| {
                            let problems = reference.check(&limits);
                            if problems.is_empty() { Ok(reference) } else { Err(format!("{problems:?}")) }
                        });
                        prop_assert_eq!(outcome.is_ok(), reference.is_ok(), "{} {:?}", event, outcome);
                        let named = sent.get("anonymousId").or(sent.get("userId")).and_then(text).is_some();
                        match outcome {
                            Ok(parsed) => {
                                let (anonymous_id, user_id) = (sent.get("anonymousId").and_then(text), sent.get("userId").and_then(text));
                                prop_assert_eq!(parsed.anonymous_id.as_deref(), anonymous_id.as_deref());
                                prop_assert_eq!(parsed.user_id.as_deref(), user_id.as_deref());
                            }
                            Err(errors) => {
                                let too_large = errors.iter().any(|e| e.field == "properties" && e.code == "too_large");
                                prop_assert!(!named || too_large, "a message naming its user was refused: {} {:?}", event, errors);
                                prop_assert!(errors.iter().any(|e| e.field == "anonymous_id" || too_large), "{:?}", errors);
                            }
                        }
                    }
                }
                let items = batch_items(&mapped, &limits);
                prop_assert!(items.len() >= mapped.len());
            }

            /// Any bytes as a Segment body: refused or decoded, never a panic.
            #[test]
            fn arbitrary_bodies_are_decided_without_panicking(
                body in prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..200),
                    strategies::json_value().prop_map(|v| v.to_string().into_bytes()),
                    prop::collection::vec(strategies::json_value(), 0..3).prop_map(|batch| json!({"batch": batch}).to_string().into_bytes()),
                ],
                call in prop::sample::select(&[Call::Batch, Call::Track, Call::Page, Call::Screen, Call::Identify][..]),
            ) {
                let limits = event_model::Limits::default();
                if let Ok(payload) = parse_payload(&body)
                    && let Ok(mapped) = decode(&payload, call, "shop", &limits)
                {
                    for item in batch_items(&mapped, &limits) {
                        if let Err(errors) = item.outcome {
                            prop_assert!(errors.iter().all(|e| !e.field.is_empty()));
                        }
                    }
                }
            }
        }
    }
}
