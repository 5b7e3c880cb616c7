//! The stored event: one flat row per event, after the collector has enriched it.
//!
//! Every field here is a column of the lake's Parquet files and of the warehouse's raw table, in
//! this order; [`crate::schema::FIELDS`] documents each one and a test keeps the two in step. On
//! the queue (spool record or Pub/Sub message data) an event travels as this struct's JSON.

use std::borrow::Cow;

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

/// An [`Event`] whose text borrows from elsewhere — the request body, the request, or an owned
/// event ([`Event::view`]): what the collector builds and the queue sinks take, so an accepted
/// event's strings are copied once, into its queue encoding.
pub type EventView<'a> = Event<Cow<'a, str>>;

/// One enriched event as stored in the queue, the lake and the warehouse.
///
/// Field documentation lives once, in [`crate::schema::FIELDS`]. On the queue, empty optional
/// columns are left out of the JSON (a third of a typical message's bytes) and read back as null.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Event<S = String> {
    pub event_id: S,
    pub event_id_generated: bool,
    pub event_type: EventType,
    pub event_name: S,
    pub event_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_event_time: Option<DateTime<Utc>>,
    pub event_time_out_of_range: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub source_id: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_path: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_referrer: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_title: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_code: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_currency: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_query: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_height: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_name: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_version: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_truncated: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_browser: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_browser_version: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_os: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_os_version: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_device_class: Option<S>,
    pub is_bot: bool,
    /// The client's free-form properties as JSON text (absent when the client sent none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<S>,
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

    /// The event as a view borrowing its text: what the queue sinks take.
    pub fn view(&self) -> EventView<'_> {
        Event {
            event_id: Cow::Borrowed(&self.event_id),
            event_id_generated: self.event_id_generated,
            event_type: self.event_type,
            event_name: Cow::Borrowed(&self.event_name),
            event_time: self.event_time,
            client_event_time: self.client_event_time,
            event_time_out_of_range: self.event_time_out_of_range,
            sent_at: self.sent_at,
            received_at: self.received_at,
            source_id: Cow::Borrowed(&self.source_id),
            anonymous_id: self.anonymous_id.as_deref().map(Cow::Borrowed),
            user_id: self.user_id.as_deref().map(Cow::Borrowed),
            session_id: self.session_id.as_deref().map(Cow::Borrowed),
            page_url: self.page_url.as_deref().map(Cow::Borrowed),
            page_path: self.page_path.as_deref().map(Cow::Borrowed),
            page_referrer: self.page_referrer.as_deref().map(Cow::Borrowed),
            page_title: self.page_title.as_deref().map(Cow::Borrowed),
            product_id: self.product_id.as_deref().map(Cow::Borrowed),
            category_id: self.category_id.as_deref().map(Cow::Borrowed),
            category_code: self.category_code.as_deref().map(Cow::Borrowed),
            brand: self.brand.as_deref().map(Cow::Borrowed),
            price: self.price,
            currency: self.currency.as_deref().map(Cow::Borrowed),
            quantity: self.quantity,
            order_id: self.order_id.as_deref().map(Cow::Borrowed),
            revenue: self.revenue,
            order_currency: self.order_currency.as_deref().map(Cow::Borrowed),
            search_query: self.search_query.as_deref().map(Cow::Borrowed),
            platform: self.platform,
            app_name: self.app_name.as_deref().map(Cow::Borrowed),
            app_version: self.app_version.as_deref().map(Cow::Borrowed),
            locale: self.locale.as_deref().map(Cow::Borrowed),
            screen_width: self.screen_width,
            screen_height: self.screen_height,
            library_name: self.library_name.as_deref().map(Cow::Borrowed),
            library_version: self.library_version.as_deref().map(Cow::Borrowed),
            utm_source: self.utm_source.as_deref().map(Cow::Borrowed),
            utm_medium: self.utm_medium.as_deref().map(Cow::Borrowed),
            utm_campaign: self.utm_campaign.as_deref().map(Cow::Borrowed),
            utm_term: self.utm_term.as_deref().map(Cow::Borrowed),
            utm_content: self.utm_content.as_deref().map(Cow::Borrowed),
            ip_truncated: self.ip_truncated.as_deref().map(Cow::Borrowed),
            user_agent: self.user_agent.as_deref().map(Cow::Borrowed),
            ua_browser: self.ua_browser.as_deref().map(Cow::Borrowed),
            ua_browser_version: self.ua_browser_version.as_deref().map(Cow::Borrowed),
            ua_os: self.ua_os.as_deref().map(Cow::Borrowed),
            ua_os_version: self.ua_os_version.as_deref().map(Cow::Borrowed),
            ua_device_class: self.ua_device_class.as_deref().map(Cow::Borrowed),
            is_bot: self.is_bot,
            properties: self.properties.as_deref().map(Cow::Borrowed),
        }
    }
}

impl<S: AsRef<str>> Event<S> {
    /// The queue encoding of this event (JSON).
    ///
    /// Byte for byte what `serde_json::to_vec` makes of this struct, written by hand (module
    /// `queue_json`) without serde's per-field overhead.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out);
        out
    }

    /// Appends the queue encoding of this event to `out` (see [`Event::to_json_bytes`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        crate::queue_json::write_event(self, out);
    }
}

impl Event {
    /// Decodes an event from its queue encoding.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
