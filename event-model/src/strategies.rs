//! Generators (proptest [`Strategy`]s) of the event contract's values, valid and adversarial,
//! for the property tests of every crate that reads or writes events.
//!
//! Compiled for this crate's tests and, behind the `proptest` feature, for other crates' tests;
//! never into a binary. Each generator leans towards the edges: timestamps at the ends of
//! chrono's range and of the four-digit years, money at the limits of its decimal, text with
//! every character JSON escapes, unicode beyond the BMP, nested property objects.
//!
//! [`config`] is the case count every property starts from: small by default, so `cargo test`
//! stays quick; `PROPTEST_CASES` overrides it (`make fuzz` runs the same properties that way).

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::event::{Event, EventType, Platform};
use crate::money::{MONEY_SCALE, Money};

/// The configuration of a property: `default_cases` cases, or `PROPTEST_CASES` when it is set.
pub fn config(default_cases: u32) -> Config {
    if std::env::var_os("PROPTEST_CASES").is_some() { Config::default() } else { Config::with_cases(default_cases) }
}

/// Fragments that exercise JSON escaping and UTF-8: quotes, backslashes, every class of control
/// character, `</script>`, multi-byte and astral characters.
const PIECES: &[&str] = &[
    "a",
    "Acme Phone 12",
    "https://shop.example/p/1?utm_source=x&y=1",
    "\"quoted\"",
    "back\\slash",
    "tab\there",
    "line\nbreak",
    "\r",
    "\u{0}",
    "\u{1}",
    "\u{1f}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{feff}",
    "é",
    "日本",
    "😀",
    "</script>",
    "/",
    " ",
    "\\u0041",
    "null",
    "-0",
    "1e309",
];

/// Any text: fragments from [`PIECES`], arbitrary unicode, or plain ASCII.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(PIECES), 0..5).prop_map(|parts| parts.concat()),
        2 => any::<String>(),
        2 => "[a-zA-Z0-9_.-]{0,24}",
        1 => (1usize..600).prop_map(|n| "x".repeat(n)),
    ]
}

/// Text that passes the contract's length rules for ids and names: 1 to `max` characters, no
/// control characters (some fields forbid them), anything else unicode has.
pub fn valid_text(max: usize) -> impl Strategy<Value = String> {
    let short = max.min(40);
    prop_oneof![
        3 => proptest::string::string_regex(&format!("[a-zA-Z0-9_.:-]{{1,{short}}}")).expect("a valid regex"),
        2 => proptest::string::string_regex(&format!("[^\\p{{Cc}}]{{1,{short}}}")).expect("a valid regex"),
        1 => prop::collection::vec(prop::sample::select(&["\"", "\\", "/", "é", "😀", "</", "a"][..]), 1..short.max(2))
            .prop_map(|parts| parts.concat()),
        1 => Just("y".repeat(max)),
    ]
}

/// An optional value of `inner`, absent half the time.
pub fn maybe<S: Strategy>(inner: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::of(inner)
}

/// Seconds since the epoch of 0000-01-01T00:00:00Z and of 10000-01-01T00:00:00Z: where the
/// four-digit years end and chrono's `+YYYYY` spelling begins.
const YEAR_0: i64 = -62_167_219_200;
const YEAR_10000: i64 = 253_402_300_800;

/// Any timestamp chrono can hold, at every precision, leaning to the edges: chrono's minimum and
/// maximum, the four-digit years' ends, the epoch, leap days, today; and leap seconds.
pub fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    let seconds = prop_oneof![
        Just(min),
        Just(max),
        min..min + 100,
        max - 100..=max,
        YEAR_0 - 100..YEAR_0 + 100,
        YEAR_10000 - 100..YEAR_10000 + 100,
        -100i64..100,
        // 2024-02-29, 2000-02-29: leap days.
        Just(1_709_164_800i64),
        Just(951_782_400i64),
        1_700_000_000i64..1_900_000_000,
        min..=max,
    ];
    let nanos = prop_oneof![
        Just(0u32),
        (0u32..1_000).prop_map(|ms| ms * 1_000_000),
        (0u32..1_000_000).prop_map(|us| us * 1_000),
        0u32..1_000_000_000,
        Just(999_999_999u32),
    ];
    let leap = (YEAR_0 / 60..YEAR_10000 / 60, 1_000_000_000u32..2_000_000_000)
        .prop_map(|(minute, nanos)| DateTime::from_timestamp(minute * 60 + 59, nanos));
    prop_oneof![
        20 => (seconds, nanos).prop_map(|(s, n)| DateTime::from_timestamp(s, n).or(DateTime::from_timestamp(s, 0))),
        1 => leap,
    ]
    .prop_map(|time| time.unwrap_or(DateTime::UNIX_EPOCH))
}

/// `time` truncated to whole microseconds, the precision the lake stores.
pub fn to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

/// The largest mantissa a `rust_decimal::Decimal` holds: 2⁹⁶ − 1.
const MAX_MANTISSA: i128 = (1 << 96) - 1;

/// Any amount money can be: small prices, values with all nine decimals, and mantissas at the
/// decimal's limit (2⁹⁶ − 1, so amounts up to ±7.9×10²⁸) at every scale from 0 to 9.
pub fn money() -> impl Strategy<Value = Money> {
    let mantissa = prop_oneof![
        -100_000i128..100_000,
        any::<i64>().prop_map(i128::from),
        (0i128..=MAX_MANTISSA),
        (MAX_MANTISSA - 1_000..=MAX_MANTISSA),
        (0u32..29).prop_map(|k| 10i128.pow(k)),
        (0u32..29).prop_map(|k| 10i128.pow(k) - 1),
    ];
    (mantissa, any::<bool>(), 0..=MONEY_SCALE).prop_map(|(mantissa, negative, scale)| {
        let mantissa = if negative { -mantissa } else { mantissa };
        Money::from(Decimal::from_i128_with_scale(mantissa, scale).normalize())
    })
}

/// Any 64-bit integer, leaning to the edges.
pub fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(i64::MIN),
        Just(i64::MAX),
        -3i64..3,
        Just(1i64 << 53),
        Just((1i64 << 53) + 1),
        any::<i64>(),
    ]
}

/// A JSON value nested up to four levels: every scalar kind, including floats that do not
/// survive a decimal round trip exactly, big integers and unicode keys.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        int().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..5).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A `properties` object: up to six keys of any JSON.
pub fn properties() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((text(), json_value()), 0..6).prop_map(|pairs| pairs.into_iter().collect())
}

/// Any stored event: every column set or empty independently, each with adversarial text,
/// timestamps, money and integers.
pub fn event() -> BoxedStrategy<Event> {
    let required = (
        prop::sample::select(&EventType::ALL[..]),
        text(),
        text(),
        text(),
        timestamp(),
        timestamp(),
        prop::array::uniform3(any::<bool>()),
    );
    let optional = (
        maybe(timestamp()),
        maybe(timestamp()),
        prop::collection::vec(maybe(text()), TEXT_COLUMNS),
        prop::array::uniform2(maybe(money())),
        prop::array::uniform3(maybe(int())),
        maybe(prop::sample::select(&Platform::ALL[..])),
        maybe(properties().prop_map(|map| Value::Object(map).to_string())),
    );
    (required.boxed(), optional.boxed())
        .prop_map(|(required, optional)| {
            let (event_type, event_id, event_name, source_id, event_time, received_at, flags) = required;
            let (client_event_time, sent_at, texts, [price, revenue], [quantity, width, height], platform, properties) =
                optional;
            let mut e = Event::new(event_id, event_type, event_time, received_at, source_id);
            e.event_name = event_name;
            [e.event_id_generated, e.event_time_out_of_range, e.is_bot] = flags;
            e.client_event_time = client_event_time;
            e.sent_at = sent_at;
            let mut texts = texts.into_iter();
            for slot in text_columns(&mut e) {
                *slot = texts.next().flatten();
            }
            e.price = price;
            e.revenue = revenue;
            e.quantity = quantity;
            e.screen_width = width;
            e.screen_height = height;
            e.platform = platform;
            e.properties = properties;
            e
        })
        .boxed()
}

/// Optional text columns of [`Event`] other than `properties`.
const TEXT_COLUMNS: usize = 32;

fn text_columns(e: &mut Event) -> [&mut Option<String>; TEXT_COLUMNS] {
    [
        &mut e.anonymous_id,
        &mut e.user_id,
        &mut e.session_id,
        &mut e.page_url,
        &mut e.page_path,
        &mut e.page_referrer,
        &mut e.page_title,
        &mut e.product_id,
        &mut e.category_id,
        &mut e.category_code,
        &mut e.brand,
        &mut e.currency,
        &mut e.order_id,
        &mut e.order_currency,
        &mut e.search_query,
        &mut e.app_name,
        &mut e.app_version,
        &mut e.locale,
        &mut e.library_name,
        &mut e.library_version,
        &mut e.utm_source,
        &mut e.utm_medium,
        &mut e.utm_campaign,
        &mut e.utm_term,
        &mut e.utm_content,
        &mut e.ip_truncated,
        &mut e.user_agent,
        &mut e.ua_browser,
        &mut e.ua_browser_version,
        &mut e.ua_os,
        &mut e.ua_os_version,
        &mut e.ua_device_class,
    ]
}

/// An RFC 3339 timestamp as a client may write it: `Z` or an offset, 0 to 9 fractional digits,
/// upper or lower case separators. Years stay within 0001–9998 so every offset keeps the text
/// valid.
pub fn timestamp_text() -> impl Strategy<Value = (String, DateTime<Utc>)> {
    let seconds = prop_oneof![
        Just(-62_135_596_800i64 + 86_400),
        -100i64..100,
        1_700_000_000i64..1_900_000_000,
        (-62_135_596_800i64 + 86_400)..253_370_764_800,
    ];
    let offset_minutes = prop_oneof![3 => Just(0i32), 1 => -1439i32..=1439];
    (seconds, 0u32..1_000_000_000, 0usize..=9, offset_minutes, any::<bool>()).prop_map(
        |(seconds, nanos, digits, offset, zulu)| {
            let kept = nanos - nanos % 10u32.pow(9 - digits as u32);
            let utc = DateTime::from_timestamp(seconds, kept).unwrap_or(DateTime::UNIX_EPOCH);
            let offset = if zulu && offset == 0 { None } else { chrono::FixedOffset::east_opt(offset * 60) };
            let local = utc.with_timezone(&offset.unwrap_or(chrono::FixedOffset::east_opt(0).expect("zero offset")));
            let mut text = local.format("%Y-%m-%dT%H:%M:%S").to_string();
            if digits > 0 {
                text.push_str(&format!(".{:09}", kept)[..digits + 1]);
            }
            match offset {
                None => text.push('Z'),
                Some(offset) => text.push_str(&offset.to_string()),
            }
            (text, utc)
        },
    )
}

/// A non-negative amount as a client may send it: a JSON string, or a JSON number when it has at
/// most 15 significant digits (which a binary float then carries exactly).
pub fn money_json() -> impl Strategy<Value = (Value, Money)> {
    let amount = prop_oneof![
        3 => (0i64..10_000_000, 0..=2u32).prop_map(|(cents, scale)| Decimal::new(cents, scale)),
        1 => money().prop_map(|m| m.as_decimal().abs()),
    ];
    (amount, any::<bool>()).prop_map(|(amount, as_number)| {
        let money = Money::from(amount.normalize());
        let text = money.to_string();
        let significant = text.bytes().filter(u8::is_ascii_digit).count();
        let value = match serde_json::from_str::<Value>(&text) {
            Ok(number @ Value::Number(_)) if as_number && significant <= 15 => number,
            _ => Value::String(text),
        };
        (value, money)
    })
}

/// A valid event as a client sends it, as JSON: every event type with what its type requires,
/// optional parts present or not, ids, timestamps, money, context and nested properties.
pub fn tracker_event() -> BoxedStrategy<Value> {
    let ids = (
        maybe(prop_oneof![
            any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string()),
            any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string().to_uppercase()),
            any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).simple().to_string()),
        ]),
        maybe(valid_text(256)),
        maybe(valid_text(256)),
        maybe(valid_text(256)),
        valid_text(256),
    );
    let times = (maybe(timestamp_text()), maybe(timestamp_text()));
    let page = maybe((
        maybe(prop_oneof![
            Just("https://shop.example/".to_owned()),
            "https://shop\\.example/p/[a-z0-9]{1,8}\\?utm_source=[a-z]{1,8}&utm_campaign=[a-z%0-9+]{0,12}",
            "https?://[a-z]{1,8}\\.example(:[0-9]{1,4})?/[a-zA-Z0-9/._~%-]{0,20}(\\?[a-z_=&%0-9]{0,20})?(#[a-z]{0,5})?",
            "https://SHOP\\.example/a/\\./b/\\.\\./c\\?utm_medium=e%C3%A9",
        ]),
        maybe(valid_text(100)),
        maybe(valid_text(100)),
        maybe(valid_text(1024)),
    ));
    let product = (
        valid_text(256),
        maybe(valid_text(256)),
        maybe("[a-z]{1,8}(\\.[a-z_]{1,8}){0,3}"),
        maybe(valid_text(256)),
        maybe(money_json()),
        maybe("[A-Z]{3}"),
        maybe(prop_oneof![1i64..10, Just(100_000i64)]),
    );
    let order = (valid_text(256), money_json(), maybe("[A-Z]{3}"));
    let context = maybe((
        maybe(prop::sample::select(&Platform::ALL[..])),
        maybe((maybe(valid_text(128)), maybe(valid_text(64)))),
        maybe("[a-z]{2}(-[A-Z]{2})?"),
        maybe((maybe(1i64..=100_000), maybe(1i64..=100_000))),
        maybe((maybe(valid_text(128)), maybe(valid_text(64)))),
        maybe(prop::collection::vec(maybe(valid_text(256)), 5)),
        maybe(prop_oneof![
            Just(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148".to_owned()
            ),
            Just("Googlebot/2.1 (+http://www.google.com/bot.html)".to_owned()),
            valid_text(200),
        ]),
    ));
    let extras = (
        any::<bool>(),
        valid_text(128),
        valid_text(1024),
        maybe(properties().prop_filter("within the properties limits", properties_fit)),
    );
    let parts =
        (ids.boxed(), times.boxed(), page.boxed(), product.boxed(), order.boxed(), context.boxed(), extras.boxed());
    // Boxed parts keep the generated value trees small: unboxed, they overflowed a test thread's
    // stack in debug builds.
    (prop::sample::select(&EventType::ALL[..]), parts)
        .prop_map(|(event_type, (ids, times, page, product, order, context, extras))| {
            let (event_id, anonymous_id, user_id, session_id, fallback_id) = ids;
            let mut event = Map::new();
            event.insert("event_type".into(), json!(event_type.as_str()));
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    event.insert(key.into(), value);
                }
            };
            put("event_id", event_id.map(Value::from));
            let has_id = anonymous_id.is_some() || user_id.is_some();
            put("anonymous_id", anonymous_id.map(Value::from));
            put("user_id", user_id.map(Value::from));
            if !has_id {
                put("anonymous_id", Some(Value::from(fallback_id)));
            }
            put("session_id", session_id.map(Value::from));
            put("event_time", times.0.map(|(text, _)| Value::from(text)));
            put("sent_at", times.1.map(|(text, _)| Value::from(text)));
            if let Some((url, path, referrer, title)) = page {
                put(
                    "page",
                    Some(object([
                        ("url", url.map(Value::from)),
                        ("path", path.map(|p| Value::from(format!("/{p}")))),
                        ("referrer", referrer.map(Value::from)),
                        ("title", title.map(Value::from)),
                    ])),
                );
            }
            let (always_product, with_product, with_order, name) =
                (extras.0, event_type.requires_product(), event_type == EventType::Purchase, extras.1);
            if with_product || always_product {
                let (id, category_id, category_code, brand, price, currency, quantity) = product;
                put(
                    "product",
                    Some(object([
                        ("product_id", Some(Value::from(id))),
                        ("category_id", category_id.map(Value::from)),
                        ("category_code", category_code.map(Value::from)),
                        ("brand", brand.map(Value::from)),
                        ("price", price.map(|(value, _)| value)),
                        ("currency", currency.map(Value::from)),
                        ("quantity", quantity.map(Value::from)),
                    ])),
                );
            }
            if with_order || (always_product && event_type == EventType::BeginCheckout) {
                let (order_id, (revenue, _), currency) = order;
                put(
                    "order",
                    Some(object([
                        ("order_id", Some(Value::from(order_id))),
                        ("revenue", Some(revenue)),
                        ("currency", currency.map(Value::from)),
                    ])),
                );
            }
            match event_type {
                EventType::Search => put("search", Some(json!({"query": extras.2}))),
                EventType::Custom => put("event_name", Some(Value::from(name))),
                _ => {}
            }
            if let Some((platform, app, locale, screen, library, campaign, user_agent)) = context {
                let pair = |p: Option<(Option<String>, Option<String>)>, second: &str| {
                    p.map(|(a, b)| object([("name", a.map(Value::from)), (second, b.map(Value::from))]))
                };
                let campaign = campaign.map(|values| {
                    let keys = ["source", "medium", "name", "term", "content"];
                    object(keys.into_iter().zip(values.into_iter().map(|v| v.map(Value::from))))
                });
                put(
                    "context",
                    Some(object([
                        ("platform", platform.map(|p| Value::from(p.as_str()))),
                        ("app", pair(app, "version")),
                        ("locale", locale.map(Value::from)),
                        (
                            "screen",
                            screen
                                .map(|(w, h)| object([("width", w.map(Value::from)), ("height", h.map(Value::from))])),
                        ),
                        ("library", pair(library, "version")),
                        ("campaign", campaign),
                        ("user_agent", user_agent.map(Value::from)),
                    ])),
                );
            }
            put("properties", extras.3.map(Value::Object));
            Value::Object(event)
        })
        .boxed()
}

fn object<'k>(entries: impl IntoIterator<Item = (&'k str, Option<Value>)>) -> Value {
    Value::Object(entries.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect())
}

/// True when `properties` is within the default limits (16 KiB, five levels).
fn properties_fit(properties: &Map<String, Value>) -> bool {
    fn depth(value: &Value) -> usize {
        match value {
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let size = serde_json::to_vec(properties).map_or(usize::MAX, |bytes| bytes.len());
    size <= 16 * 1024 && properties.values().map(depth).max().unwrap_or(0) < crate::tracker::MAX_PROPERTIES_DEPTH
}

/// `json` written with every non-ASCII character, and `/`, as a `\u` escape (surrogate pairs
/// beyond the BMP): the same JSON value, spelled as differently as a client may.
pub fn escape_everything(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string && !escaped && (!c.is_ascii() || c == '/') {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
            continue;
        }
        out.push(c);
        if escaped {
            escaped = false;
        } else if c == '\\' && in_string {
            escaped = true;
        } else if c == '"' {
            in_string = !in_string;
        }
    }
    out
}
