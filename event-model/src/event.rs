//! The stored event: one flat row per event, after the collector has enriched it.
//!
//! Every field here is a column of the lake's Parquet files and of the warehouse's raw table, in
//! this order; [`crate::schema::FIELDS`] documents each one and a test keeps the two in step. On
//! the queue (spool record or Pub/Sub message data) an event travels as this struct's JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;

/// What happened. The e-commerce funnel steps plus `page_view`, `search` and `custom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A page (or app screen) was shown.
    PageView,
    /// A product detail page or card was viewed.
    ProductView,
    /// A product was added to the cart.
    AddToCart,
    /// A product was removed from the cart.
    RemoveFromCart,
    /// The shopper started the checkout.
    BeginCheckout,
    /// An order was placed (one event per order line, or one per order without product fields).
    Purchase,
    /// A site search was run.
    Search,
    /// Anything else; the name is in `event_name`.
    Custom,
}

impl EventType {
    /// Every event type, in funnel order where there is one.
    pub const ALL: [EventType; 8] = [
        EventType::PageView,
        EventType::ProductView,
        EventType::AddToCart,
        EventType::RemoveFromCart,
        EventType::BeginCheckout,
        EventType::Purchase,
        EventType::Search,
        EventType::Custom,
    ];

    /// The wire and column value, e.g. `add_to_cart`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "page_view",
            EventType::ProductView => "product_view",
            EventType::AddToCart => "add_to_cart",
            EventType::RemoveFromCart => "remove_from_cart",
            EventType::BeginCheckout => "begin_checkout",
            EventType::Purchase => "purchase",
            EventType::Search => "search",
            EventType::Custom => "custom",
        }
    }

    /// True for the events that are about one product and so must name it.
    pub fn requires_product(self) -> bool {
        matches!(self, EventType::ProductView | EventType::AddToCart | EventType::RemoveFromCart)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the event was tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// A browser storefront.
    Web,
    /// An iOS app.
    Ios,
    /// An Android app.
    Android,
    /// A back-end service tracking on the shopper's behalf.
    Server,
}

impl Platform {
    /// Every platform.
    pub const ALL: [Platform; 4] = [Platform::Web, Platform::Ios, Platform::Android, Platform::Server];

    /// The wire and column value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::Web => "web",
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Server => "server",
        }
    }
}

/// One enriched event as stored in the queue, the lake and the warehouse.
///
/// Field documentation lives once, in [`crate::schema::FIELDS`]. On the queue, empty optional
/// columns are left out of the JSON (a third of a typical message's bytes) and read back as null.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Event {
    pub event_id: String,
    pub event_id_generated: bool,
    pub event_type: EventType,
    pub event_name: String,
    pub event_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_event_time: Option<DateTime<Utc>>,
    pub event_time_out_of_range: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_height: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_truncated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_browser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_browser_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_device_class: Option<String>,
    pub is_bot: bool,
    /// The client's free-form properties as JSON text (absent when the client sent none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<String>,
}

impl Event {
    /// An event with only its required columns set; every optional column is empty.
    pub fn new(
        event_id: impl Into<String>,
        event_type: EventType,
        event_time: DateTime<Utc>,
        received_at: DateTime<Utc>,
        source_id: impl Into<String>,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            event_id_generated: false,
            event_type,
            event_name: event_type.as_str().to_owned(),
            event_time,
            client_event_time: None,
            event_time_out_of_range: false,
            sent_at: None,
            received_at,
            source_id: source_id.into(),
            anonymous_id: None,
            user_id: None,
            session_id: None,
            page_url: None,
            page_path: None,
            page_referrer: None,
            page_title: None,
            product_id: None,
            category_id: None,
            category_code: None,
            brand: None,
            price: None,
            currency: None,
            quantity: None,
            order_id: None,
            revenue: None,
            order_currency: None,
            search_query: None,
            platform: None,
            app_name: None,
            app_version: None,
            locale: None,
            screen_width: None,
            screen_height: None,
            library_name: None,
            library_version: None,
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            utm_term: None,
            utm_content: None,
            ip_truncated: None,
            user_agent: None,
            ua_browser: None,
            ua_browser_version: None,
            ua_os: None,
            ua_os_version: None,
            ua_device_class: None,
            is_bot: false,
            properties: None,
        }
    }

    /// The queue encoding of this event (JSON).
    ///
    /// Byte for byte what `serde_json::to_vec` makes of this struct, written by hand (module
    /// `queue_json`) without serde's per-field overhead.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        crate::queue_json::write_event(self, &mut out);
        out
    }

    /// Decodes an event from its queue encoding.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
