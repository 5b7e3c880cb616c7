//! The one table that documents every stored column, and everything generated from it.
//!
//! [`FIELDS`] is the source of truth for the lake and the warehouse. From it come:
//! * [`arrow_schema`] — the Arrow schema the batcher writes to Parquet;
//! * [`to_record_batch`] — events to an Arrow record batch (through [`crate::columns`]);
//! * [`bigquery_schema_json`] — the BigQuery table schema the loader and Terraform use (checked
//!   in as `event-model/schema/bigquery-events.json`, kept equal by a test);
//! * [`markdown_reference`] — `docs/event-contract.md`'s column table (a test keeps the
//!   checked-in file identical to what this generates).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::columns::{ColumnBuilders, StoredRow};
use crate::event::Event;
use crate::money::{MONEY_PRECISION, MONEY_SCALE};

/// The storage type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text.
    String,
    /// true/false.
    Bool,
    /// Microseconds since the Unix epoch, UTC.
    Timestamp,
    /// `DECIMAL(38, 9)`: money.
    Decimal,
    /// 64-bit signed integer.
    Int64,
}

impl ColumnType {
    /// The Arrow type this column is written with.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::Decimal => DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE as i8),
            ColumnType::Int64 => DataType::Int64,
        }
    }

    /// The BigQuery standard SQL type the Parquet column loads as.
    pub fn bigquery(self) -> &'static str {
        match self {
            ColumnType::String => "STRING",
            ColumnType::Bool => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Decimal => "NUMERIC",
            ColumnType::Int64 => "INTEGER",
        }
    }

    /// The DuckDB type the Parquet column reads as.
    pub fn duckdb(self) -> &'static str {
        match self {
            ColumnType::String => "VARCHAR",
            ColumnType::Bool => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP WITH TIME ZONE",
            ColumnType::Decimal => "DECIMAL(38,9)",
            ColumnType::Int64 => "BIGINT",
        }
    }
}

/// One stored column.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// Column name (also the JSON key on the queue).
    pub name: &'static str,
    /// Storage type.
    pub column_type: ColumnType,
    /// False when every row has a value.
    pub nullable: bool,
    /// What the column holds and where it comes from.
    pub description: &'static str,
}

const fn field(name: &'static str, column_type: ColumnType, nullable: bool, description: &'static str) -> FieldSpec {
    FieldSpec { name, column_type, nullable, description }
}

use ColumnType::{Bool, Decimal, Int64, String as Text, Timestamp};

/// Every stored column, in storage order.
pub const FIELDS: &[FieldSpec] = &[
    field(
        "event_id",
        Text,
        false,
        "Client-generated UUID, or a server UUIDv7 when the client sent none. Retries and redeliveries reuse it; dbt staging deduplicates on it.",
    ),
    field(
        "event_id_generated",
        Bool,
        false,
        "True when the collector assigned `event_id` because the client sent none (such events cannot be deduplicated across client retries).",
    ),
    field(
        "event_type",
        Text,
        false,
        "One of page_view, product_view, add_to_cart, remove_from_cart, begin_checkout, purchase, search, custom.",
    ),
    field(
        "event_name",
        Text,
        false,
        "Equals `event_type`, except for custom events, where it is the client's name for the event.",
    ),
    field(
        "event_time",
        Timestamp,
        false,
        "When the event happened, on the server's clock: `received_at - (sent_at - client event_time)` (clock-skew correction), or `received_at` when the client's claim lies outside the accepted window. The lake's hour folders and the warehouse's day partitions use this column.",
    ),
    field(
        "client_event_time",
        Timestamp,
        true,
        "The event time the client claimed, uncorrected, on the client's clock.",
    ),
    field(
        "event_time_out_of_range",
        Bool,
        false,
        "True when the corrected time fell outside the accepted window (too far in the past or future) and `event_time` was set to `received_at`.",
    ),
    field(
        "sent_at",
        Timestamp,
        true,
        "When the client sent the request, on the client's clock (from the event or its batch).",
    ),
    field("received_at", Timestamp, false, "When the collector received the request, on the server's clock."),
    field("source_id", Text, false, "The source the write key belongs to (e.g. the storefront, the iOS app)."),
    field(
        "anonymous_id",
        Text,
        true,
        "Device- or browser-scoped id set by the tracker before the shopper is known. At least one of anonymous_id and user_id is present.",
    ),
    field("user_id", Text, true, "The shop's id for a logged-in shopper."),
    field("session_id", Text, true, "The tracker's own session id, when it keeps one."),
    field("page_url", Text, true, "Full URL of the page (web) or a deep link (apps)."),
    field("page_path", Text, true, "Path part of the page URL."),
    field("page_referrer", Text, true, "Referring URL."),
    field("page_title", Text, true, "Document or screen title."),
    field("product_id", Text, true, "The product's id in the shop's catalogue."),
    field("category_id", Text, true, "The product's category id."),
    field("category_code", Text, true, "Dotted category path, e.g. `electronics.smartphone`."),
    field("brand", Text, true, "The product's brand."),
    field("price", Decimal, true, "Unit price of the product, DECIMAL(38,9)."),
    field("currency", Text, true, "ISO 4217 code of `price`."),
    field("quantity", Int64, true, "Units of the product in the cart action or order line."),
    field("order_id", Text, true, "Order id on purchase (and checkout) events."),
    field(
        "revenue",
        Decimal,
        true,
        "Revenue of this event, DECIMAL(38,9). Additive: a multi-line order is several purchase events sharing order_id, each carrying its line's revenue; order revenue is the sum by order_id.",
    ),
    field("order_currency", Text, true, "ISO 4217 code of `revenue`."),
    field("search_query", Text, true, "The search terms of a search event."),
    field("platform", Text, true, "web, ios, android or server."),
    field("app_name", Text, true, "Name of the app or storefront that tracked the event."),
    field("app_version", Text, true, "Version of that app."),
    field("locale", Text, true, "BCP 47 locale of the client, e.g. en-GB."),
    field("screen_width", Int64, true, "Screen width in pixels."),
    field("screen_height", Int64, true, "Screen height in pixels."),
    field("library_name", Text, true, "Name of the tracking library."),
    field("library_version", Text, true, "Version of the tracking library."),
    field("utm_source", Text, true, "Campaign source (utm_source)."),
    field("utm_medium", Text, true, "Campaign medium (utm_medium)."),
    field("utm_campaign", Text, true, "Campaign name (utm_campaign)."),
    field("utm_term", Text, true, "Campaign term (utm_term)."),
    field("utm_content", Text, true, "Campaign content (utm_content)."),
    field(
        "ip_truncated",
        Text,
        true,
        "Client IP truncated to its /24 (IPv4) or /48 (IPv6) network. The full IP is never stored.",
    ),
    field("user_agent", Text, true, "The User-Agent header, or the one the client reported in its context."),
    field("ua_browser", Text, true, "Browser or app family parsed from the user agent."),
    field("ua_browser_version", Text, true, "Browser version."),
    field("ua_os", Text, true, "Operating system."),
    field("ua_os_version", Text, true, "Operating system version."),
    field("ua_device_class", Text, true, "desktop, mobile, tablet, bot or other."),
    field("is_bot", Bool, false, "True when the user agent is a known crawler or automation tool."),
    field("properties", Text, true, "The client's free-form properties as JSON text."),
];

/// The Arrow schema of stored events, generated from [`FIELDS`].
pub fn arrow_schema() -> SchemaRef {
    let fields: Vec<Field> = FIELDS
        .iter()
        .map(|spec| {
            Field::new(spec.name, spec.column_type.arrow(), spec.nullable).with_metadata(
                std::collections::HashMap::from([("description".to_owned(), spec.description.to_owned())]),
            )
        })
        .collect();
    Arc::new(Schema::new(fields).with_metadata(std::collections::HashMap::from([(
        "clickstream.schema_version".to_owned(),
        crate::SCHEMA_VERSION.to_string(),
    )])))
}

/// Converts events to one Arrow record batch with [`arrow_schema`].
pub fn to_record_batch(events: &[Event]) -> Result<RecordBatch, ArrowError> {
    let mut builders = ColumnBuilders::with_capacity(events.len());
    for event in events {
        builders.append(&StoredRow::from_event(event));
    }
    builders.finish()
}

/// The BigQuery table schema (the JSON `bq` and the REST API take), generated from [`FIELDS`].
pub fn bigquery_schema_json() -> serde_json::Value {
    let fields: Vec<serde_json::Value> = FIELDS
        .iter()
        .map(|spec| {
            serde_json::json!({
                "name": spec.name,
                "type": spec.column_type.bigquery(),
                "mode": if spec.nullable { "NULLABLE" } else { "REQUIRED" },
                "description": spec.description,
            })
        })
        .collect();
    serde_json::Value::Array(fields)
}

/// The column reference table of `docs/event-contract.md`.
pub fn markdown_reference() -> String {
    let mut out = String::from(
        "| # | column | Arrow / Parquet | BigQuery | DuckDB | null | description |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (index, spec) in FIELDS.iter().enumerate() {
        let arrow = match spec.column_type {
            ColumnType::String => "Utf8".to_owned(),
            ColumnType::Bool => "Boolean".to_owned(),
            ColumnType::Timestamp => "Timestamp(µs, UTC)".to_owned(),
            ColumnType::Decimal => format!("Decimal128({MONEY_PRECISION}, {MONEY_SCALE})"),
            ColumnType::Int64 => "Int64".to_owned(),
        };
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} |\n",
            index + 1,
            spec.name,
            arrow,
            spec.column_type.bigquery(),
            spec.column_type.duckdb(),
            if spec.nullable { "yes" } else { "no" },
            spec.description,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::money::Money;
    use chrono::TimeZone;

    pub(crate) fn sample_event() -> Event {
        let time = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 13, 5, 0).unwrap();
        Event {
            client_event_time: Some(time),
            sent_at: Some(time),
            anonymous_id: Some("anon-1".into()),
            product_id: Some("p-1".into()),
            category_code: Some("electronics.smartphone".into()),
            brand: Some("acme".into()),
            price: Some(Money::parse("19.99").unwrap()),
            currency: Some("EUR".into()),
            quantity: Some(2),
            order_id: Some("o-1".into()),
            revenue: Some(Money::parse("39.98").unwrap()),
            order_currency: Some("EUR".into()),
            ip_truncated: Some("203.0.113.0".into()),
            ..Event::new("0195b3c2-7f00-7000-8000-000000000001", EventType::Purchase, time, time, "storefront")
        }
    }

    #[test]
    fn every_struct_field_is_a_documented_column_in_the_same_order() {
        // Every column set: empty optional columns are left out of the JSON.
        let json = serde_json::to_string(&crate::columns::tests::full_event()).unwrap();
        // Keys appear in struct declaration order in serde_json's output.
        let mut keys = Vec::new();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let object = value.as_object().unwrap();
        for spec in FIELDS {
            assert!(object.contains_key(spec.name), "Event has no field {}", spec.name);
            keys.push((json.find(&format!("\"{}\":", spec.name)).unwrap(), spec.name));
        }
        assert_eq!(object.len(), FIELDS.len(), "Event has fields that FIELDS does not document");
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "FIELDS order differs from the struct's field order");
    }

    #[test]
    fn record_batch_has_every_column_with_the_right_values() {
        let batch = to_record_batch(&[sample_event(), sample_event()]).unwrap();
        assert_eq!(batch.num_columns(), FIELDS.len());
        assert_eq!(batch.num_rows(), 2);
        let revenue =
            batch.column_by_name("revenue").unwrap().as_any().downcast_ref::<arrow_array::Decimal128Array>().unwrap();
        assert_eq!(revenue.value(0), 39_980_000_000);
        let time = batch
            .column_by_name("event_time")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(time.value(1), sample_event().event_time.timestamp_micros());
        let user = batch.column_by_name("user_id").unwrap();
        assert_eq!(user.null_count(), 2);
    }

    #[test]
    fn required_columns_are_never_null_in_a_batch() {
        let batch = to_record_batch(&[sample_event()]).unwrap();
        for spec in FIELDS.iter().filter(|spec| !spec.nullable) {
            assert_eq!(batch.column_by_name(spec.name).unwrap().null_count(), 0, "{}", spec.name);
        }
    }

    #[test]
    fn bigquery_schema_names_types_and_modes_follow_fields() {
        let schema = bigquery_schema_json();
        let fields = schema.as_array().unwrap();
        assert_eq!(fields.len(), FIELDS.len());
        let event_time = fields.iter().find(|f| f["name"] == "event_time").unwrap();
        assert_eq!(event_time["type"], "TIMESTAMP");
        assert_eq!(event_time["mode"], "REQUIRED");
        let price = fields.iter().find(|f| f["name"] == "price").unwrap();
        assert_eq!(price["type"], "NUMERIC");
    }

    #[test]
    fn the_checked_in_bigquery_schema_file_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/bigquery-events.json");
        let generated = format!("{}\n", serde_json::to_string_pretty(&bigquery_schema_json()).unwrap());
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        if on_disk != generated {
            if std::env::var_os("CLICKSTREAM_UPDATE_DOCS").is_some() {
                std::fs::write(path, generated).unwrap();
            } else {
                panic!(
                    "event-model/schema/bigquery-events.json is out of date; regenerate with \
                     CLICKSTREAM_UPDATE_DOCS=1 cargo test -p event-model"
                );
            }
        }
    }

    #[test]
    fn docs_event_contract_holds_the_generated_column_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/event-contract.md");
        let doc = std::fs::read_to_string(path).expect("docs/event-contract.md exists");
        let begin = "<!-- BEGIN GENERATED COLUMNS -->\n";
        let end = "<!-- END GENERATED COLUMNS -->";
        let generated = markdown_reference();
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        if doc[start..stop] != generated {
            if std::env::var_os("CLICKSTREAM_UPDATE_DOCS").is_some() {
                let updated = format!("{}{}{}", &doc[..start], generated, &doc[stop..]);
                std::fs::write(path, updated).unwrap();
            } else {
                panic!(
                    "docs/event-contract.md is out of date with event-model's FIELDS; \
                     regenerate with CLICKSTREAM_UPDATE_DOCS=1 cargo test -p event-model"
                );
            }
        }
    }
}
