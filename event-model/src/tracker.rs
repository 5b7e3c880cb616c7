//! What clients send, and the rules it must follow.
//!
//! A request body is either one event object or a batch envelope
//! `{"sent_at": "…", "events": [ … ]}`. [`parse_body`] splits it, enforces the size limits, and
//! parses every event on its own, so one bad event never hides the good ones next to it. Each
//! event is checked in two passes: serde (shape and types, unknown fields are errors) and
//! [`TrackerEvent::check`] (the `validator` rules on each field, then the rules that span fields,
//! such as "a product_view names its product"). Every problem is a [`FieldError`] naming the
//! field by its dotted path.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::event::{EventType, Platform};
use crate::failed::FieldError;
use crate::money::Money;
pub use crate::page_url::UrlFacts;

/// Size limits on requests and events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Most bytes of one (decompressed) request body.
    pub max_batch_bytes: usize,
    /// Most bytes of one event's JSON.
    pub max_event_bytes: usize,
    /// Most bytes of one event's `properties` object.
    pub max_properties_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_events: 500,
            max_batch_bytes: 500 * 1024,
            max_event_bytes: 32 * 1024,
            max_properties_bytes: 16 * 1024,
        }
    }
}

/// The page an event happened on.
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Page<'a> {
    /// Must be an absolute URL: [`TrackerEvent::check`] parses it once, for the rule and for
    /// [`Page::url_facts`].
    #[validate(length(max = 4096))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub url: Option<Cow<'a, str>>,
    #[validate(length(max = 2048))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub path: Option<Cow<'a, str>>,
    #[validate(length(max = 4096))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub referrer: Option<Cow<'a, str>>,
    #[validate(length(max = 1024))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub title: Option<Cow<'a, str>>,
    /// The parsed `url`, set by [`TrackerEvent::check`] when it is valid.
    #[serde(skip)]
    pub url_facts: Option<UrlFacts<'a>>,
}

/// The product an event is about.
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Product<'a> {
    #[validate(length(min = 1, max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub product_id: Option<Cow<'a, str>>,
    #[validate(length(min = 1, max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub category_id: Option<Cow<'a, str>>,
    #[validate(length(min = 1, max = 512), custom(function = "validate_category_code"))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub category_code: Option<Cow<'a, str>>,
    #[validate(length(min = 1, max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub brand: Option<Cow<'a, str>>,
    #[validate(custom(function = "validate_non_negative"))]
    pub price: Option<Money>,
    #[validate(custom(function = "validate_currency"))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub currency: Option<Cow<'a, str>>,
    #[validate(range(min = 1, max = 100_000))]
    #[serde(default, deserialize_with = "whole_number")]
    pub quantity: Option<i64>,
}

/// The order of a purchase (or checkout).
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Order<'a> {
    #[validate(length(min = 1, max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub order_id: Option<Cow<'a, str>>,
    #[validate(custom(function = "validate_non_negative"))]
    pub revenue: Option<Money>,
    #[validate(custom(function = "validate_currency"))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub currency: Option<Cow<'a, str>>,
}

/// A site search.
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Search<'a> {
    #[validate(length(min = 1, max = 1024))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub query: Option<Cow<'a, str>>,
}

/// Name and version of an app or library.
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NameVersion<'a> {
    #[validate(length(min = 1, max = 128))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
    #[validate(length(min = 1, max = 64))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub version: Option<Cow<'a, str>>,
}

/// Screen size in pixels.
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Screen {
    #[validate(range(min = 1, max = 100_000))]
    #[serde(default, deserialize_with = "whole_number")]
    pub width: Option<i64>,
    #[validate(range(min = 1, max = 100_000))]
    #[serde(default, deserialize_with = "whole_number")]
    pub height: Option<i64>,
}

/// Campaign (UTM) fields.
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Campaign<'a> {
    #[validate(length(max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub source: Option<Cow<'a, str>>,
    #[validate(length(max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub medium: Option<Cow<'a, str>>,
    #[validate(length(max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
    #[validate(length(max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub term: Option<Cow<'a, str>>,
    #[validate(length(max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub content: Option<Cow<'a, str>>,
}

/// Where and how the event was tracked.
#[derive(Clone, Debug, Default, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Context<'a> {
    pub platform: Option<Platform>,
    #[serde(borrow)]
    pub app: Option<NameVersion<'a>>,
    #[validate(length(min = 2, max = 35))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub locale: Option<Cow<'a, str>>,
    pub screen: Option<Screen>,
    #[serde(borrow)]
    pub library: Option<NameVersion<'a>>,
    #[serde(borrow)]
    pub campaign: Option<Campaign<'a>>,
    /// The shopper's user agent when the sender is not the shopper's device (server-side
    /// tracking); otherwise the request's `User-Agent` header is used.
    #[validate(length(max = 1024))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub user_agent: Option<Cow<'a, str>>,
}

/// One event as a client sends it.
#[derive(Clone, Debug, Deserialize, Validate, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TrackerEvent<'a> {
    /// Client-generated UUID; makes retries idempotent downstream.
    #[serde(borrow, default)]
    pub event_id: Option<EventId<'a>>,
    pub event_type: EventType,
    /// Required for `custom` events; ignored for the others' naming.
    #[validate(length(min = 1, max = 128), custom(function = "validate_event_name"))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_name: Option<Cow<'a, str>>,
    /// When the event happened, on the client's clock (RFC 3339).
    #[serde(default, deserialize_with = "timestamp")]
    pub event_time: Option<DateTime<Utc>>,
    /// When the client sent it, on the client's clock; defaults to the batch's `sent_at`.
    #[serde(default, deserialize_with = "timestamp")]
    pub sent_at: Option<DateTime<Utc>>,
    #[validate(length(min = 1, max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub anonymous_id: Option<Cow<'a, str>>,
    #[validate(length(min = 1, max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub user_id: Option<Cow<'a, str>>,
    #[validate(length(min = 1, max = 256))]
    #[serde(borrow, default, deserialize_with = "text")]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub page: Option<Page<'a>>,
    #[serde(borrow)]
    pub product: Option<Product<'a>>,
    #[serde(borrow)]
    pub order: Option<Order<'a>>,
    #[serde(borrow)]
    pub search: Option<Search<'a>>,
    #[serde(borrow)]
    pub context: Option<Context<'a>>,
    /// Free-form JSON object, bounded by [`Limits::max_properties_bytes`] and a nesting depth of
    /// [`MAX_PROPERTIES_DEPTH`].
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An event's id: the client's UUID, or one the server assigned ([`TrackerEvent::assign_missing_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventId<'a> {
    /// The id.
    pub uuid: Uuid,
    /// True when the server generated it because the client sent none.
    pub generated: bool,
    /// The client's text when it is already the stored form (lower-case, hyphenated), which
    /// client libraries send; the stored id then borrows it instead of formatting the UUID.
    canonical: Option<&'a str>,
}

impl<'a> EventId<'a> {
    /// An id the server generated: a UUIDv7, ordered by time.
    pub fn generate() -> Self {
        Self { uuid: Uuid::now_v7(), generated: true, canonical: None }
    }

    /// The id as stored: lower-case and hyphenated.
    pub fn text(&self) -> Cow<'a, str> {
        match self.canonical {
            Some(text) => Cow::Borrowed(text),
            None => Cow::Owned(self.uuid.hyphenated().to_string()),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EventId<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl<'de> serde::de::Visitor<'de> for IdVisitor {
            type Value = EventId<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a UUID string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                let mut id = self.visit_str::<E>(text)?;
                // A 36-character UUID is the hyphenated form; without upper case it is the
                // stored form exactly.
                if text.len() == 36 && !text.bytes().any(|b| b.is_ascii_uppercase()) {
                    id.canonical = Some(text);
                }
                Ok(id)
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let uuid = Uuid::parse_str(text).map_err(|e| E::custom(format_args!("UUID parsing failed: {e}")))?;
                Ok(EventId { uuid, generated: false, canonical: None })
            }
        }

        deserializer.deserialize_str(IdVisitor)
    }
}

/// An optional integer that may be written as a JSON number with a zero fraction (`2.0`), as
/// JSON Schema counts those as integers too.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(value) = number.as_i64() {
        return Ok(Some(value));
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Ok(Some(value as i64)),
        _ => Err(serde::de::Error::custom(format!("expected a whole number, got {number}"))),
    }
}

/// An optional string that borrows from the request body when it has no escapes, so the
/// common event is read without copying its text. (serde's own `Option<Cow<str>>` always
/// copies.)
fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Text<'de>>::deserialize(deserializer)?.map(|text| text.0))
}

struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(value)))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// An optional RFC 3339 timestamp, read as chrono's `DateTime` deserializer reads it (same
/// accepted texts, same errors) with the common shape parsed directly.
fn timestamp<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Option::<Timestamp>::deserialize(deserializer)?.map(|time| time.0))
}

struct Timestamp(DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;

        impl serde::de::Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 formatted date and time string")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                crate::columns::parse_timestamp(value).map(Timestamp).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(TimestampVisitor)
    }
}

/// Deepest nesting allowed inside `properties`.
pub const MAX_PROPERTIES_DEPTH: usize = 5;

fn validate_currency(code: &str) -> Result<(), ValidationError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(error("currency", "must be an ISO 4217 code: three upper-case letters, e.g. EUR"))
    }
}

fn validate_non_negative(amount: &Money) -> Result<(), ValidationError> {
    if amount.is_negative() { Err(error("range", "must not be negative")) } else { Ok(()) }
}

fn validate_category_code(code: &str) -> Result<(), ValidationError> {
    let well_formed = code.split('.').all(|part| !part.is_empty() && !part.chars().any(char::is_control));
    if well_formed {
        Ok(())
    } else {
        Err(error("category_code", "must be a dotted path of non-empty names, e.g. electronics.smartphone"))
    }
}

fn validate_event_name(name: &str) -> Result<(), ValidationError> {
    if name.chars().any(char::is_control) {
        Err(error("event_name", "must not contain control characters"))
    } else {
        Ok(())
    }
}

fn error(code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(Cow::Borrowed(message))
}

fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Adds the problems `validator` finds in `part` (at `path`), if it is there.
fn validate_part<T: Validate>(path: &str, part: Option<&T>, out: &mut Vec<FieldError>) {
    if let Some(Err(errors)) = part.map(Validate::validate) {
        flatten(path, &errors, out);
    }
}

/// Flattens validator's nested error tree into dotted-path field errors, in field-name order.
///
/// validator keeps a part's errors in a `HashMap`, whose order differs from one map to the next:
/// walked as stored, the same event was refused with its errors in a different order each time.
fn flatten(prefix: &str, errors: &ValidationErrors, out: &mut Vec<FieldError>) {
    let mut fields: Vec<_> = errors.errors().iter().collect();
    fields.sort_unstable_by_key(|&(field, _)| field);
    for (field, kind) in fields {
        let path = if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let message = match (&e.message, e.code.as_ref()) {
                        (Some(message), _) => message.to_string(),
                        (None, "length") => describe_bounds("length", e),
                        (None, "range") => describe_bounds("value", e),
                        (None, code) => format!("failed the {code} rule"),
                    };
                    out.push(FieldError::new(&path, e.code.as_ref(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(&format!("{path}[{index}]"), inner, out);
                }
            }
        }
    }
}

fn describe_bounds(what: &str, e: &ValidationError) -> String {
    let min = e.params.get("min").map(ToString::to_string);
    let max = e.params.get("max").map(ToString::to_string);
    match (min, max) {
        (Some(min), Some(max)) => format!("{what} must be between {min} and {max}"),
        (Some(min), None) => format!("{what} must be at least {min}"),
        (None, Some(max)) => format!("{what} must be at most {max}"),
        (None, None) => format!("{what} is out of bounds"),
    }
}

impl<'a> TrackerEvent<'a> {
    /// The event's id, generating one (see [`EventId::generate`]) when the client sent none.
    pub fn assign_missing_id(&mut self) -> Uuid {
        self.event_id.get_or_insert_with(EventId::generate).uuid
    }

    /// Every rule violation of this event, each naming its field; empty when the event is valid.
    ///
    /// Also keeps what the page URL yields (see [`Page::url_facts`]), so it is parsed once.
    pub fn check(&mut self, limits: &Limits) -> Vec<FieldError> {
        let mut problems = Vec::new();
        // The nested parts are validated here rather than by `#[validate(nested)]`, whose
        // generated code hashes each part's name into a map even when it is valid.
        validate_part("", Some(&*self), &mut problems);
        validate_part("page", self.page.as_ref(), &mut problems);
        validate_part("product", self.product.as_ref(), &mut problems);
        validate_part("order", self.order.as_ref(), &mut problems);
        validate_part("search", self.search.as_ref(), &mut problems);
        if let Some(context) = &self.context {
            validate_part("context", Some(context), &mut problems);
            validate_part("context.app", context.app.as_ref(), &mut problems);
            validate_part("context.screen", context.screen.as_ref(), &mut problems);
            validate_part("context.library", context.library.as_ref(), &mut problems);
            validate_part("context.campaign", context.campaign.as_ref(), &mut problems);
        }
        if let Some(page) = &mut self.page
            && let Some(url) = &page.url
        {
            // Facts borrow the body's text where the URL does; an unescaped copy cannot lend.
            page.url_facts = match url {
                Cow::Borrowed(url) => UrlFacts::parse(url),
                Cow::Owned(url) => UrlFacts::parse(url).map(UrlFacts::into_owned),
            };
            if page.url_facts.is_none() {
                problems.push(FieldError::new("page.url", "url", "must be an absolute URL"));
            }
        }
        if self.anonymous_id.is_none() && self.user_id.is_none() {
            problems.push(FieldError::new(
                "anonymous_id",
                "required",
                "at least one of anonymous_id and user_id is required",
            ));
        }
        let product_id = self.product.as_ref().and_then(|p| p.product_id.as_ref());
        if self.event_type.requires_product() && product_id.is_none() {
            problems.push(FieldError::new(
                "product.product_id",
                "required",
                format!("{} events must name the product", self.event_type),
            ));
        }
        if self.event_type == EventType::Purchase {
            if self.order.as_ref().and_then(|o| o.order_id.as_ref()).is_none() {
                problems.push(FieldError::new("order.order_id", "required", "purchase events must carry the order id"));
            }
            if self.order.as_ref().and_then(|o| o.revenue).is_none() {
                problems.push(FieldError::new(
                    "order.revenue",
                    "required",
                    "purchase events must carry the revenue of the order (or of this order line)",
                ));
            }
        }
        if self.event_type == EventType::Search && self.search.as_ref().and_then(|s| s.query.as_ref()).is_none() {
            problems.push(FieldError::new("search.query", "required", "search events must carry the query"));
        }
        if self.event_type == EventType::Custom && self.event_name.is_none() {
            problems.push(FieldError::new("event_name", "required", "custom events must carry an event_name"));
        }
        if let Some(properties) = &self.properties {
            let size = serde_json::to_vec(properties).map(|bytes| bytes.len()).unwrap_or(0);
            if size > limits.max_properties_bytes {
                problems.push(FieldError::new(
                    "properties",
                    "too_large",
                    format!("{size} bytes; at most {} bytes", limits.max_properties_bytes),
                ));
            }
            let nesting = properties.values().map(depth).max().unwrap_or(0) + 1;
            if nesting > MAX_PROPERTIES_DEPTH {
                problems.push(FieldError::new(
                    "properties",
                    "too_deep",
                    format!("nested {nesting} levels deep; at most {MAX_PROPERTIES_DEPTH}"),
                ));
            }
        }
        problems
    }
}

/// A parsed request body: the batch-level `sent_at` and each event's outcome.
#[derive(Debug, PartialEq)]
pub struct Batch<'a> {
    /// The envelope's `sent_at`, applied to events that carry none.
    pub sent_at: Option<DateTime<Utc>>,
    /// One entry per event, in request order.
    pub items: Vec<BatchItem<'a>>,
}

/// One event of a request: parsed and valid, or rejected with its reasons.
#[derive(Debug, PartialEq)]
pub struct BatchItem<'a> {
    /// The event's own JSON text, kept so a rejected event can be dead-lettered as it was sent.
    pub raw: &'a str,
    /// The valid event (borrowing `raw`'s text), or every reason it was rejected.
    pub outcome: Result<TrackerEvent<'a>, Vec<FieldError>>,
}

/// Why a whole request body was refused (as opposed to single events within it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON, or JSON of the wrong top-level shape.
    #[error("{field}: {message}")]
    Malformed {
        /// The offending field (`body` for the whole request).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// More events than a batch may hold.
    #[error("events: a batch holds at most {max} events, this one holds {count}")]
    TooManyEvents {
        /// Events in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// No events at all.
    #[error("events: the batch is empty")]
    Empty,
}

/// The top level of a request body, read in one pass: the batch fields when it is a batch, and
/// whether any other key is present (then the body is a single event, or an invalid batch).
struct TopLevel<'a> {
    events: Option<Vec<&'a RawValue>>,
    sent_at: Option<DateTime<Utc>>,
    /// Why `sent_at` is not a timestamp, when it is not.
    sent_at_error: Option<String>,
    other_key: Option<String>,
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopLevelVisitor;

        impl<'de> serde::de::Visitor<'de> for TopLevelVisitor {
            type Value = TopLevel<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object: one event, or a batch {\"events\": [...]}")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut top = TopLevel { events: None, sent_at: None, sent_at_error: None, other_key: None };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "events" => top.events = Some(map.next_value()?),
                        // A single event has its own sent_at, with its own rules: the value is
                        // read whole first, so one that is not a timestamp (even a number or an
                        // object) leaves the rest of the body readable, and is judged later.
                        "sent_at" => {
                            let value = map.next_value::<serde_json::Value>()?;
                            match Option::<DateTime<Utc>>::deserialize(&value) {
                                Ok(sent_at) => top.sent_at = sent_at,
                                Err(error) => top.sent_at_error = Some(error.to_string()),
                            }
                        }
                        other => {
                            top.other_key.get_or_insert_with(|| other.to_owned());
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(top)
            }
        }

        deserializer.deserialize_map(TopLevelVisitor)
    }
}

/// Parses one event from its JSON text, with the path of the first type error.
pub fn parse_event<'a>(raw: &'a str, limits: &Limits) -> Result<TrackerEvent<'a>, Vec<FieldError>> {
    if raw.len() > limits.max_event_bytes {
        return Err(vec![too_large(raw, limits)]);
    }
    // The fast path parses without path tracking; only a failing event is parsed again to name
    // the field at fault.
    match serde_json::from_str::<TrackerEvent>(raw) {
        Ok(event) => checked(event, limits),
        Err(_) => Err(parse_error_with_path(raw)),
    }
}

fn too_large(raw: &str, limits: &Limits) -> FieldError {
    FieldError::new(
        "event",
        "too_large",
        format!("{} bytes; an event may be at most {} bytes", raw.len(), limits.max_event_bytes),
    )
}

/// `event` when it follows every rule, otherwise its problems.
fn checked<'a>(mut event: TrackerEvent<'a>, limits: &Limits) -> Result<TrackerEvent<'a>, Vec<FieldError>> {
    let problems = event.check(limits);
    if problems.is_empty() { Ok(event) } else { Err(problems) }
}

fn parse_error_with_path(raw: &str) -> Vec<FieldError> {
    // An event of a batch may be any JSON value; serde would call anything but an object an
    // "invalid type … expected struct TrackerEvent".
    let kind = match raw.trim_start().as_bytes().first() {
        Some(b'{') => None,
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b'n') => Some("null"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(_) => Some("a number"),
        None => Some("empty"),
    };
    if let Some(kind) = kind {
        return vec![FieldError::new("event", "invalid", format!("an event must be a JSON object, not {kind}"))];
    }
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    match serde_path_to_error::deserialize::<_, TrackerEvent<'_>>(&mut deserializer) {
        Ok(_) => vec![FieldError::new("event", "invalid", "the event does not parse")],
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { "event".to_owned() } else { path };
            vec![FieldError::new(&field, "invalid", e.into_inner().to_string())]
        }
    }
}

/// Reads a batch body in one pass: the envelope by hand, each event by serde straight from the
/// body, its span taken from where serde stopped. It reads only well-formed batches whose every
/// event parses, with `sent_at` and `events` each at most once and nothing else; on anything
/// else it gives up (`None`) and [`parse_body`]'s general path, which reads the body twice (its
/// shape, then each event) and names what is wrong, decides. For the bodies it reads, the
/// outcome is the general path's.
struct OnePass<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> OnePass<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn batch(mut self, limits: &Limits) -> Option<Batch<'a>> {
        self.expect(b'{')?;
        let mut sent_at = None;
        let mut items = None;
        loop {
            let key = self.plain_key()?;
            self.expect(b':')?;
            match key {
                "events" if items.is_none() => items = Some(self.events(limits)?),
                "sent_at" if sent_at.is_none() => sent_at = Some(self.value::<Option<DateTime<Utc>>>()?.0),
                _ => return None,
            }
            match self.next_token()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        self.skip_whitespace();
        if self.pos != self.text.len() {
            return None;
        }
        Some(Batch { sent_at: sent_at.flatten(), items: items? })
    }

    fn events(&mut self, limits: &Limits) -> Option<Vec<BatchItem<'a>>> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        loop {
            if items.len() == limits.max_batch_events {
                return None;
            }
            let (event, raw) = self.value::<TrackerEvent<'a>>()?;
            let outcome = if raw.len() > limits.max_event_bytes {
                Err(vec![too_large(raw, limits)])
            } else {
                checked(event, limits)
            };
            items.push(BatchItem { raw, outcome });
            match self.next_token()? {
                b',' => continue,
                b']' => return Some(items),
                _ => return None,
            }
        }
    }

    /// The next JSON value, read by serde, and its text.
    fn value<T: Deserialize<'a>>(&mut self) -> Option<(T, &'a str)> {
        self.skip_whitespace();
        let rest = &self.text[self.pos..];
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let value = values.next()?.ok()?;
        let length = values.byte_offset();
        self.pos += length;
        Some((value, &rest[..length]))
    }

    /// A key without escapes.
    fn plain_key(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = &self.text[self.pos..];
        let end = rest.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest.as_bytes()[end] != b'"' {
            return None;
        }
        self.pos += end + 1;
        Some(&rest[..end])
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next_token()? == byte).then_some(())
    }

    /// The next byte that is not JSON whitespace.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let byte = *self.text.as_bytes().get(self.pos)?;
        self.pos += 1;
        Some(byte)
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && matches!(bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }
}

/// Splits a request body into its events and parses each one.
///
/// The caller has already enforced [`Limits::max_batch_bytes`] on the decompressed body.
pub fn parse_body<'a>(body: &'a str, limits: &Limits) -> Result<Batch<'a>, BodyError> {
    // Most requests are one valid event: read it as one, in one pass. Anything else (a batch,
    // which has the `events` key no event has, or an event that does not parse) takes the
    // general path below, which gives the same outcome for these and names what is wrong.
    if body.len() <= limits.max_event_bytes
        && let Ok(event) = serde_json::from_str::<TrackerEvent>(body)
    {
        let outcome = checked(event, limits);
        return Ok(Batch { sent_at: None, items: vec![BatchItem { raw: body, outcome }] });
    }
    // A batch whose events all parse is read in one pass too.
    if let Some(batch) = OnePass::new(body).batch(limits) {
        return Ok(batch);
    }
    parse_in_two_passes(body, limits)
}

/// The general path of [`parse_body`]: the body's shape first (keeping each event's text), then
/// each event on its own.
fn parse_in_two_passes<'a>(body: &'a str, limits: &Limits) -> Result<Batch<'a>, BodyError> {
    let malformed = |field: &str, message: String| BodyError::Malformed { field: field.to_owned(), message };
    // Path tracking costs a tenth of a batch's parse; only a body that fails is read again
    // with it, to name the field at fault.
    let top: TopLevel<'_> = match serde_json::from_str(body) {
        Ok(top) => top,
        Err(_) => serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(body)).map_err(|e| {
            let path = e.path().to_string();
            // Syntax errors are about the body as a whole; data errors name the field.
            let syntax = !matches!(e.inner().classify(), serde_json::error::Category::Data);
            let field = if path == "." || syntax { "body".to_owned() } else { path };
            malformed(
                &field,
                format!("expected a JSON object (one event or {{\"events\": [...]}}): {}", e.into_inner()),
            )
        })?,
    };
    if let Some(events) = top.events {
        if let Some(other) = top.other_key {
            return Err(malformed(
                "body",
                format!("a batch holds only \"sent_at\" and \"events\"; unexpected {other}"),
            ));
        }
        if let Some(error) = top.sent_at_error {
            return Err(malformed("sent_at", format!("expected an RFC 3339 timestamp: {error}")));
        }
        if events.len() > limits.max_batch_events {
            return Err(BodyError::TooManyEvents { count: events.len(), max: limits.max_batch_events });
        }
        if events.is_empty() {
            return Err(BodyError::Empty);
        }
        let items = events
            .into_iter()
            .map(|raw| BatchItem { outcome: parse_event(raw.get(), limits), raw: raw.get() })
            .collect();
        return Ok(Batch { sent_at: top.sent_at, items });
    }
    // The top level parsed, so the body is one JSON object: the event.
    let outcome = parse_event(body, limits);
    Ok(Batch { sent_at: None, items: vec![BatchItem { raw: body, outcome }] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn fields(outcome: &Result<TrackerEvent<'_>, Vec<FieldError>>) -> Vec<String> {
        match outcome {
            Ok(_) => vec![],
            Err(errors) => errors.iter().map(|e| e.field.clone()).collect(),
        }
    }

    fn check(json: serde_json::Value) -> Vec<String> {
        fields(&parse_event(&json.to_string(), &limits()))
    }

    fn page_view() -> serde_json::Value {
        serde_json::json!({"event_type": "page_view", "anonymous_id": "a1",
                           "page": {"url": "https://shop.example/", "path": "/"}})
    }

    #[test]
    fn a_minimal_page_view_is_valid() {
        assert_eq!(check(page_view()), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_event_type_names_the_field() {
        assert_eq!(check(serde_json::json!({"event_type": "teleport", "anonymous_id": "a"})), ["event_type"]);
    }

    #[test]
    fn an_event_needs_an_anonymous_or_user_id() {
        assert_eq!(check(serde_json::json!({"event_type": "page_view"})), ["anonymous_id"]);
        assert!(check(serde_json::json!({"event_type": "page_view", "user_id": "u"})).is_empty());
    }

    #[test]
    fn product_events_must_name_the_product() {
        let event = serde_json::json!({"event_type": "add_to_cart", "anonymous_id": "a"});
        assert_eq!(check(event), ["product.product_id"]);
    }

    #[test]
    fn purchases_need_order_id_and_revenue() {
        let event = serde_json::json!({"event_type": "purchase", "anonymous_id": "a", "order": {}});
        assert_eq!(check(event), ["order.order_id", "order.revenue"]);
    }

    #[test]
    fn searches_need_a_query_and_custom_events_a_name() {
        assert_eq!(check(serde_json::json!({"event_type": "search", "anonymous_id": "a"})), ["search.query"]);
        assert_eq!(check(serde_json::json!({"event_type": "custom", "anonymous_id": "a"})), ["event_name"]);
    }

    #[test]
    fn negative_prices_and_bad_currencies_are_rejected_with_their_paths() {
        let event = serde_json::json!({"event_type": "product_view", "anonymous_id": "a",
            "product": {"product_id": "p", "price": -1, "currency": "eur", "quantity": 0}});
        let mut got = check(event);
        got.sort();
        assert_eq!(got, ["product.currency", "product.price", "product.quantity"]);
    }

    #[test]
    fn rules_on_every_part_name_their_nested_path() {
        let mut event = page_view();
        event["page"]["title"] = "t".repeat(1025).into();
        event["search"] = serde_json::json!({"query": ""});
        event["order"] = serde_json::json!({"currency": "euro"});
        event["context"] = serde_json::json!({"locale": "e", "app": {"name": ""}, "screen": {"width": 0},
            "library": {"version": "v".repeat(65)}, "campaign": {"source": "s".repeat(257)}});
        let mut got = check(event);
        got.sort();
        assert_eq!(
            got,
            [
                "context.app.name",
                "context.campaign.source",
                "context.library.version",
                "context.locale",
                "context.screen.width",
                "order.currency",
                "page.title",
                "search.query",
            ]
        );
    }

    #[test]
    fn a_string_price_with_too_many_digits_is_rejected() {
        let event = serde_json::json!({"event_type": "product_view", "anonymous_id": "a",
            "product": {"product_id": "p", "price": "0.0000000001"}});
        assert_eq!(check(event), ["product.price"]);
    }

    #[test]
    fn type_errors_point_at_the_nested_field() {
        let event = serde_json::json!({"event_type": "page_view", "anonymous_id": "a",
            "context": {"screen": {"width": "wide"}}});
        assert_eq!(check(event), ["context.screen.width"]);
    }

    #[test]
    fn unknown_fields_are_errors_not_silently_dropped() {
        let mut event = page_view();
        event["prodcut"] = serde_json::json!({});
        let errors = parse_event(&event.to_string(), &limits()).unwrap_err();
        assert!(errors[0].message.contains("prodcut"), "{errors:?}");
    }

    #[test]
    fn whole_numbers_written_with_a_zero_fraction_are_integers() {
        let event = serde_json::json!({"event_type": "add_to_cart", "anonymous_id": "a",
            "product": {"product_id": "p", "quantity": 2.0}, "context": {"screen": {"width": 390.0}}});
        let text = event.to_string();
        let parsed = parse_event(&text, &limits()).unwrap();
        assert_eq!(parsed.product.unwrap().quantity, Some(2));
        let event = serde_json::json!({"event_type": "add_to_cart", "anonymous_id": "a",
            "product": {"product_id": "p", "quantity": 2.5}});
        assert_eq!(check(event), ["product.quantity"]);
    }

    #[test]
    fn a_valid_page_url_is_parsed_once_for_its_path_and_campaign() {
        let mut event = page_view();
        event["page"]["url"] = "https://shop.example/a/./b/%7Ex?utm_source=news+letter&utm_medium=&x=1".into();
        let text = event.to_string();
        let parsed = parse_event(&text, &limits()).unwrap();
        let facts = parsed.page.unwrap().url_facts.unwrap();
        assert_eq!(facts.path, "/a/b/%7Ex");
        assert_eq!(facts.utm, [Some("news letter".into()), None, None, None, None]);
    }

    #[test]
    fn bad_urls_timestamps_and_ids_are_rejected() {
        let mut event = page_view();
        event["page"]["url"] = "not a url".into();
        let problems = parse_event(&event.to_string(), &limits()).unwrap_err();
        assert_eq!(problems, [FieldError::new("page.url", "url", "must be an absolute URL")]);
        let mut event = page_view();
        event["event_time"] = "yesterday".into();
        assert_eq!(check(event), ["event_time"]);
        let mut event = page_view();
        event["event_id"] = "123".into();
        assert_eq!(check(event), ["event_id"]);
    }

    #[test]
    fn event_ids_are_stored_lower_case_and_hyphenated_borrowing_the_canonical_form() {
        let canonical = "0190a4c2-7b1e-7c3d-8e2f-9a0b1c2d3e4f";
        for (sent, borrowed) in [
            (canonical.to_owned(), true),
            (canonical.to_uppercase(), false),
            (canonical.replace('-', ""), false),
            (format!("{{{canonical}}}"), false),
            (format!("urn:uuid:{canonical}"), false),
        ] {
            let json =
                serde_json::json!({"event_id": sent, "event_type": "page_view", "anonymous_id": "a"}).to_string();
            let mut event = parse_event(&json, &limits()).unwrap();
            let id = event.event_id.unwrap();
            assert_eq!(id.text(), canonical, "{sent}");
            assert_eq!(matches!(id.text(), Cow::Borrowed(_)), borrowed, "{sent}");
            assert!(!id.generated);
            assert_eq!(event.assign_missing_id(), id.uuid);
        }
        let json = page_view().to_string();
        let mut event = parse_event(&json, &limits()).unwrap();
        let assigned = event.assign_missing_id();
        assert_eq!(assigned.get_version_num(), 7);
        assert!(event.event_id.unwrap().generated);
        assert_eq!(event.assign_missing_id(), assigned, "assigned once");
    }

    #[test]
    fn category_codes_are_dotted_paths() {
        let mut event = serde_json::json!({"event_type": "product_view", "anonymous_id": "a",
            "product": {"product_id": "p", "category_code": "electronics..phone"}});
        assert_eq!(check(event.clone()), ["product.category_code"]);
        event["product"]["category_code"] = "electronics.smartphone".into();
        assert!(check(event).is_empty());
    }

    #[test]
    fn properties_are_bounded_in_size_and_depth() {
        let mut event = page_view();
        event["properties"] = serde_json::json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}});
        assert_eq!(check(event), ["properties"]);
        let mut event = page_view();
        event["properties"] = serde_json::json!({"blob": "x".repeat(17 * 1024)});
        assert_eq!(check(event), ["properties"]);
    }

    #[test]
    fn an_oversized_event_is_rejected_before_parsing() {
        let mut event = page_view();
        event["page"]["title"] = "t".repeat(40 * 1024).into();
        let errors = parse_event(&event.to_string(), &limits()).unwrap_err();
        assert_eq!(errors[0].code, "too_large");
    }

    #[test]
    fn a_batch_parses_each_event_on_its_own() {
        let body = serde_json::json!({"sent_at": "2026-11-24T10:00:00Z", "events": [
            page_view(), {"event_type": "nope", "anonymous_id": "a"}, page_view()]});
        let text = body.to_string();
        let batch = parse_body(&text, &limits()).unwrap();
        assert!(batch.sent_at.is_some());
        let outcomes: Vec<bool> = batch.items.iter().map(|i| i.outcome.is_ok()).collect();
        assert_eq!(outcomes, [true, false, true]);
        assert!(batch.items[1].raw.contains("nope"));
    }

    #[test]
    fn a_batch_read_in_one_pass_is_read_as_the_general_path_reads_it() {
        let limits = Limits { max_batch_events: 4, max_event_bytes: 400, ..Limits::default() };
        let event = page_view().to_string();
        let invalid = serde_json::json!({"event_type": "search", "anonymous_id": "a"}).to_string();
        let escaped = r#"{"event_type": "page_view", "anonymous_id": "a\u00e9\"b", "page": {"url": "https:\/\/shop.example\/x?utm_source=a"}}"#;
        let big =
            serde_json::json!({"event_type": "page_view", "anonymous_id": "a", "page": {"title": "t".repeat(500)}})
                .to_string();
        let read_in_one_pass = [
            format!(r#"{{"sent_at": "2026-11-24T10:00:00Z", "events": [{event}, {invalid}]}}"#),
            format!(" \n{{ \"events\" :\t[ {event} ,{escaped}\r\n] , \"sent_at\":null }}\n"),
            format!(r#"{{"events": [{big}, {event}]}}"#),
            format!(r#"{{"events": [{event}]}}"#),
        ];
        for body in &read_in_one_pass {
            let one_pass = OnePass::new(body).batch(&limits).unwrap_or_else(|| panic!("not read in one pass: {body}"));
            assert_eq!(Ok(one_pass), parse_in_two_passes(body, &limits), "{body}");
        }
        let outcomes: Vec<bool> =
            parse_body(&read_in_one_pass[0], &limits).unwrap().items.iter().map(|i| i.outcome.is_ok()).collect();
        assert_eq!(outcomes, [true, false]);
        assert!(
            matches!(&parse_body(&read_in_one_pass[2], &limits).unwrap().items[0].outcome, Err(e) if e[0].code == "too_large")
        );
        // Everything else is left to the general path, which names the problem.
        let left_to_the_general_path = [
            format!(r#"{{"events": [{event}, {{"event_type": "nope", "anonymous_id": "a"}}]}}"#),
            format!(r#"{{"events": [{event}], "events": [{event}]}}"#),
            format!(r#"{{"events": [{event}], "extra": 1}}"#),
            format!(r#"{{"sent_at": "yesterday", "events": [{event}]}}"#),
            format!(r#"{{"events": [{event},{event},{event},{event},{event}]}}"#),
            format!(r#"{{"ev\u0065nts": [{event}]}}"#),
            format!(r#"{{"events": [{event}]}} x"#),
            format!(r#"{{"events": [{event},]}}"#),
            r#"{"events": []}"#.to_owned(),
            r#"{"events": null}"#.to_owned(),
        ];
        for body in &left_to_the_general_path {
            assert!(OnePass::new(body).batch(&limits).is_none(), "{body}");
        }
        let mixed = parse_body(&left_to_the_general_path[0], &limits).unwrap();
        assert_eq!(fields(&mixed.items[1].outcome), ["event_type"]);
        assert!(matches!(
            parse_body(&left_to_the_general_path[4], &limits),
            Err(BodyError::TooManyEvents { count: 5, max: 4 })
        ));
    }

    #[test]
    fn batch_shape_errors_refuse_the_whole_request() {
        let too_many = serde_json::json!({"events": vec![page_view(); 501]});
        assert!(matches!(
            parse_body(&too_many.to_string(), &limits()),
            Err(BodyError::TooManyEvents { count: 501, max: 500 })
        ));
        assert_eq!(parse_body(r#"{"events": []}"#, &limits()).unwrap_err(), BodyError::Empty);
        assert!(matches!(parse_body("[1,2]", &limits()), Err(BodyError::Malformed { .. })));
        assert!(matches!(parse_body("{", &limits()), Err(BodyError::Malformed { .. })));
        let wrong = parse_body(r#"{"events": 3}"#, &limits()).unwrap_err();
        assert!(matches!(wrong, BodyError::Malformed { ref field, .. } if field == "events"));
    }

    /// Found by `proptests::a_bad_batch_sent_at_is_named`: the batch's `sent_at` was reported as
    /// an unexpected key of the body.
    #[test]
    fn a_batch_sent_at_that_is_not_a_timestamp_is_blamed_on_sent_at() {
        let body = r#"{"sent_at": "yesterday", "events": [{"event_type": "page_view", "anonymous_id": "a"}]}"#;
        let error = parse_body(body, &limits()).unwrap_err();
        assert!(matches!(&error, BodyError::Malformed { field, .. } if field == "sent_at"), "{error:?}");
    }

    /// Found by `proptests::a_wrong_value_is_named_by_its_path`: a `sent_at` that was not a
    /// string stopped the top-level reader half-way through its value, and the next key then
    /// read as a syntax error of the whole body.
    #[test]
    fn an_event_s_sent_at_of_the_wrong_type_is_blamed_on_sent_at() {
        let body = r#"{"anonymous_id":"A","event_type":"begin_checkout","sent_at":[1],"session_id":"a"}"#;
        let batch = parse_body(body, &limits()).unwrap();
        assert_eq!(fields(&batch.items[0].outcome), ["sent_at"]);
        let body = r#"{"events": [{"event_type": "page_view", "anonymous_id": "a"}], "sent_at": {"at": 1}}"#;
        let error = parse_body(body, &limits()).unwrap_err();
        assert!(matches!(&error, BodyError::Malformed { field, .. } if field == "sent_at"), "{error:?}");
    }

    /// Found by `proptests::a_batch_event_that_is_not_an_object_is_refused_as_such`: an event
    /// that was `null` or a number was refused as "invalid type: null, expected struct
    /// TrackerEvent".
    #[test]
    fn a_batch_event_that_is_not_an_object_says_so() {
        let body = r#"{"events": [{"event_type": "page_view", "anonymous_id": "a"}, null, 7, "x", [], true]}"#;
        let batch = parse_body(body, &limits()).unwrap();
        for item in &batch.items[1..] {
            let errors = item.outcome.as_ref().unwrap_err();
            assert_eq!(errors[0].field, "event");
            assert!(errors[0].message.starts_with("an event must be a JSON object, not "), "{errors:?}");
        }
    }

    /// Found by `proptests::edited_requests_are_decided_consistently`: an event with two bad
    /// product fields was refused as `[product.product_id, product.brand]` in a batch and as
    /// `[product.brand, product.product_id]` alone; validator's errors came in hash order.
    #[test]
    fn the_errors_of_one_part_come_in_field_name_order_every_time() {
        let long = "y".repeat(257);
        let event = serde_json::json!({"event_type": "product_view", "anonymous_id": "a", "product": {
            "product_id": long, "brand": long, "category_code": "electronics..phone", "currency": "euro",
            "category_id": long, "price": -1}});
        let text = event.to_string();
        let batch = format!(r#"{{"events": [{text}]}}"#);
        let alone = parse_event(&text, &limits()).unwrap_err();
        let fields: Vec<&str> = alone.iter().map(|e| e.field.as_str()).collect();
        let mut sorted = fields.clone();
        sorted.sort_unstable();
        assert_eq!(fields, sorted, "{alone:?}");
        assert_eq!(fields.len(), 6, "{alone:?}");
        for _ in 0..20 {
            assert_eq!(parse_event(&text, &limits()).unwrap_err(), alone);
            assert_eq!(parse_body(&batch, &limits()).unwrap().items[0].outcome.as_ref().unwrap_err(), &alone);
        }
    }

    /// Properties over generated requests (`crate::strategies`); `make fuzz` runs them longer.
    mod proptests {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::*;
        use crate::strategies;

        /// How a client may spell the same JSON.
        #[derive(Clone, Copy, Debug)]
        enum Spelling {
            Compact,
            Pretty,
            Escaped,
        }

        fn spell(value: &Value, spelling: Spelling) -> String {
            match spelling {
                Spelling::Compact => value.to_string(),
                Spelling::Pretty => serde_json::to_string_pretty(value).unwrap(),
                Spelling::Escaped => strategies::escape_everything(&value.to_string()),
            }
        }

        fn spelling() -> impl Strategy<Value = Spelling> {
            prop::sample::select(&[Spelling::Compact, Spelling::Pretty, Spelling::Escaped][..])
        }

        /// The event with its id's borrowed spelling forgotten: whether the id borrows from the
        /// body depends on how the body spells it, not on what it is.
        fn normalized(mut event: TrackerEvent<'_>) -> TrackerEvent<'_> {
            if let Some(id) = &mut event.event_id {
                id.canonical = None;
            }
            event
        }

        /// Every leaf path of a tracker event (`product.price`), and the parts themselves, with
        /// a value of the wrong type for each; `properties`' insides take anything.
        fn wrong_values(event: &Value) -> Vec<(String, Value)> {
            let mut out = Vec::new();
            fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
                let Value::Object(map) = value else { return };
                for (key, inner) in map {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    let wrong = match inner {
                        Value::String(_) => serde_json::json!([1]),
                        Value::Number(_) => serde_json::json!({"n": 1}),
                        Value::Object(_) => serde_json::json!("not an object"),
                        _ => serde_json::json!("not a value"),
                    };
                    out.push((path.clone(), wrong));
                    if key != "properties" {
                        walk(&path, inner, out);
                    }
                }
            }
            walk("", event, &mut out);
            out
        }

        fn set_path(event: &mut Value, path: &str, value: Value) {
            let pointer = format!("/{}", path.replace('.', "/"));
            if let Some(slot) = event.pointer_mut(&pointer) {
                *slot = value;
            }
        }

        // Generating a request costs far more than decoding it: fewer cases over generated
        // events than over arbitrary text in `cargo test`; `make fuzz` runs both longer.
        proptest! {
            #![proptest_config(strategies::config(64))]

            /// A valid request, single event or batch, however it is spelled, decodes to the events
            /// serde's own reading of the same JSON gives, every one of them valid.
            #[test]
            fn valid_requests_decode_as_serde_reads_them(
                events in prop::collection::vec(strategies::tracker_event(), 1..4),
                sent_at in strategies::maybe(strategies::timestamp_text()),
                as_batch in any::<bool>(),
                spelling in spelling(),
            ) {
                let body = if as_batch || events.len() > 1 {
                    let mut batch = serde_json::json!({"events": events});
                    if let Some((text, _)) = &sent_at {
                        batch["sent_at"] = Value::from(text.clone());
                    }
                    batch
                } else {
                    events[0].clone()
                };
                let text = spell(&body, spelling);
                let batch = parse_body(&text, &limits()).unwrap();
                prop_assert_eq!(batch.items.len(), events.len());
                if body.get("events").is_some() {
                    prop_assert_eq!(batch.sent_at, sent_at.map(|(_, time)| time));
                }
                for (item, sent) in batch.items.into_iter().zip(&events) {
                    let mut reference = TrackerEvent::deserialize(sent).unwrap();
                    prop_assert_eq!(reference.check(&limits()), vec![]);
                    let parsed = item.outcome.unwrap();
                    prop_assert_eq!(&serde_json::from_str::<Value>(item.raw).unwrap(), sent);
                    prop_assert_eq!(parsed.properties.as_ref(), sent.get("properties").and_then(Value::as_object));
                    prop_assert_eq!(normalized(parsed), normalized(reference));
                }
            }

            /// A valid event with bytes edited: decided without panicking, each event as on its
            /// own, and a body the one-pass reader reads is read as the general path reads it.
            #[test]
            fn edited_requests_are_decided_consistently(
                events in prop::collection::vec(strategies::tracker_event(), 1..3),
                edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3, prop::sample::select(&["", "\"", "\\", ",", "}", "{", "[", "]", ":", "0", "-1", "null", "true", "\"x\"", "1e999", "\u{0}", "é", "\"events\":"][..])), 1..4),
            ) {
                let mut text = serde_json::json!({"sent_at": "2026-11-24T10:00:00Z", "events": events}).to_string();
                for (at, len, with) in edits {
                    let mut at = at.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    let mut end = (at + len).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, with);
                }
                if let Ok(batch) = parse_body(&text, &limits()) {
                    for item in &batch.items {
                        prop_assert_eq!(&item.outcome, &parse_event(item.raw, &limits()));
                    }
                }
                if let Some(one_pass) = OnePass::new(&text).batch(&limits()) {
                    prop_assert_eq!(Ok(one_pass), parse_in_two_passes(&text, &limits()));
                }
            }

            /// A value of the wrong type anywhere in an event is refused with an error naming
            /// that field by its dotted path, alone and inside a batch.
            #[test]
            fn a_wrong_value_is_named_by_its_path(
                event in strategies::tracker_event(),
                pick in any::<prop::sample::Index>(),
                in_batch in any::<bool>(),
            ) {
                let candidates = wrong_values(&event);
                let (path, wrong) = pick.get(&candidates).clone();
                let mut broken = event.clone();
                set_path(&mut broken, &path, wrong);
                let body = if in_batch { serde_json::json!({"events": [event, broken]}) } else { broken };
                let text = body.to_string();
                let batch = parse_body(&text, &limits()).unwrap();
                let errors = batch.items.last().unwrap().outcome.as_ref().unwrap_err();
                prop_assert!(errors.iter().any(|e| e.field == path), "{} not named: {:?}", path, errors);
            }

            /// A batch-level `sent_at` that is not a timestamp is blamed on `sent_at`.
            #[test]
            fn a_bad_batch_sent_at_is_named(event in strategies::tracker_event(), bad in prop_oneof![
                Just(Value::from("yesterday")),
                Just(Value::from(7)),
                Just(serde_json::json!({})),
                "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(Value::from),
            ]) {
                let text = serde_json::json!({"sent_at": bad, "events": [event]}).to_string();
                let error = parse_body(&text, &limits()).unwrap_err();
                prop_assert!(matches!(&error, BodyError::Malformed { field, .. } if field == "sent_at"), "{:?}", error);
            }

            /// An event of a batch that is not a JSON object is refused as such.
            #[test]
            fn a_batch_event_that_is_not_an_object_is_refused_as_such(
                event in strategies::tracker_event(),
                other in strategies::json_value().prop_filter("not an object", |v| !v.is_object()),
            ) {
                let text = serde_json::json!({"events": [event, other]}).to_string();
                let batch = parse_body(&text, &limits()).unwrap();
                prop_assert!(batch.items[0].outcome.is_ok());
                let errors = batch.items[1].outcome.as_ref().unwrap_err();
                prop_assert_eq!(errors.len(), 1);
                prop_assert_eq!(&errors[0].field, "event");
                prop_assert!(errors[0].message.contains("JSON object"), "{:?}", errors);
            }
        }

        proptest! {
            #![proptest_config(strategies::config(1024))]

            /// Any text at all: a result or an error, never a panic; and every event of a batch
            /// is decided as it would be on its own.
            #[test]
            fn arbitrary_text_is_decided_without_panicking(text in prop_oneof![
                any::<String>(),
                prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                "[\\[\\]{}\":,0-9a-z_ \\\\]{0,80}",
            ]) {
                if let Ok(batch) = parse_body(&text, &limits()) {
                    for item in &batch.items {
                        prop_assert_eq!(&item.outcome, &parse_event(item.raw, &limits()));
                    }
                }
            }
        }
    }
}
