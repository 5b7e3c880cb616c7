//! Backfill: imports historical CSV exports in the public REES46 "eCommerce behavior data from
//! multi category store" layout into the lake, mapped onto the event contract.
//!
//! Columns: `event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session`
//! with `event_type` one of `view`, `cart`, `remove_from_cart`, `purchase`. Mapping:
//!
//! | REES46 | contract |
//! |---|---|
//! | view / cart / remove_from_cart / purchase | product_view / add_to_cart / remove_from_cart / purchase |
//! | event_time (`2019-10-01 00:00:00 UTC`) | event_time, client_event_time, received_at |
//! | user_id | user_id (REES46 ids are per shopper, logged in or not) |
//! | user_session | session_id |
//! | product_id, category_id, category_code, brand, price | the product fields, currency USD, quantity 1 |
//! | purchase | order_id `<user_session>-<event_time>` (one order per session and second), revenue = price |
//!
//! `event_id` is a UUIDv5 of the source id, file name and line number, so importing the same
//! file again produces the same ids — and the same object names (`backfill-<file>-<chunk>`), so
//! a re-run overwrites instead of duplicating.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use event_model::{Event, EventType, Money};

/// One CSV row that could not be mapped, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// Namespace of backfill event ids (UUIDv5).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6c69_636b_7374_7265_616d_2d72_6565_3436);

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let trimmed = text.trim().trim_end_matches(" UTC");
    NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S")
        .map(|naive| naive.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(text.trim()).map(|t| t.with_timezone(&Utc)))
        .map_err(|_| format!("event_time {text:?} is not like 2019-10-01 00:00:00 UTC"))
}

fn optional(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Maps one REES46 record (by column position) onto the contract.
pub fn map_record(record: &csv::StringRecord, line: u64, file_key: &str, source_id: &str) -> Result<Event, RowError> {
    let error = |message: String| RowError { line, message };
    if record.len() < 9 {
        return Err(error(format!("expected 9 columns, found {}", record.len())));
    }
    let field = |i: usize| record.get(i).unwrap_or_default();
    let time = parse_time(field(0)).map_err(error)?;
    let event_type = match field(1).trim() {
        "view" => EventType::ProductView,
        "cart" => EventType::AddToCart,
        "remove_from_cart" => EventType::RemoveFromCart,
        "purchase" => EventType::Purchase,
        other => {
            return Err(error(format!(
                "unknown event_type {other:?} (expected view, cart, remove_from_cart, purchase)"
            )));
        }
    };
    let price = match optional(field(6)) {
        Some(text) => Some(parse_price(&text).map_err(|e| error(format!("price: {e}")))?),
        None => None,
    };
    let user_id = optional(field(7));
    let session = optional(field(8));
    let product_id = optional(field(2)).ok_or_else(|| error("product_id is empty".into()))?;
    let event_id = uuid::Uuid::new_v5(&NAMESPACE, format!("{source_id}\0{file_key}\0{line}").as_bytes());
    let purchase = event_type == EventType::Purchase;
    Ok(Event {
        client_event_time: Some(time),
        user_id: user_id.clone(),
        session_id: session.clone(),
        product_id: Some(product_id),
        category_id: optional(field(3)),
        category_code: optional(field(4)),
        brand: optional(field(5)),
        price,
        currency: price.map(|_| "USD".to_owned()),
        quantity: Some(1),
        order_id: purchase.then(|| format!("{}-{}", session.clone().or(user_id).unwrap_or_default(), time.timestamp())),
        revenue: if purchase { price } else { None },
        order_currency: (purchase && price.is_some()).then(|| "USD".to_owned()),
        library_name: Some("rees46-backfill".to_owned()),
        ..Event::new(event_id.to_string(), event_type, time, time, source_id)
    })
}

/// A stable key for a CSV file: its name and size.
pub fn file_key(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{clean}-{size}")
}

fn parse_price(text: &str) -> Result<Money, String> {
    let money = Money::parse(text).map_err(|e| e.to_string())?;
    if money.is_negative() { Err(format!("{text} is negative")) } else { Ok(money) }
}

/// The columns a REES46 export starts with.
pub const HEADER: [&str; 9] = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
];

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The file could not be opened or read.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// What is wrong, and what to do about it.
        message: String,
    },
    /// A chunk could not be written.
    #[error(transparent)]
    Write(#[from] crate::writer::WriteError),
}

/// Imports `paths` into the lake in chunks of `chunk_rows` rows (the memory bound), with a
/// progress bar when `progress` is set. Rows that cannot be mapped go to the dead-letter
/// objects with their line numbers.
pub async fn run(
    paths: &[std::path::PathBuf],
    source_id: &str,
    writer: &crate::writer::LakeWriter,
    chunk_rows: usize,
    progress: bool,
) -> Result<crate::writer::Summary, BackfillError> {
    let mut summary = crate::writer::Summary::default();
    for path in paths {
        let csv_error = |message: String| BackfillError::Csv { path: path.display().to_string(), message };
        let file = std::fs::File::open(path).map_err(|e| csv_error(format!("cannot open: {e}")))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = if progress {
            let bar = indicatif::ProgressBar::new(size);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(path.display().to_string());
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bar.wrap_read(file));
        let header = reader.headers().map_err(|e| csv_error(format!("cannot read the header: {e}")))?.clone();
        let names: Vec<&str> = header.iter().map(str::trim).collect();
        if names.len() < HEADER.len() || names[..HEADER.len()] != HEADER {
            return Err(csv_error(format!(
                "the header is {names:?}; a REES46 export starts with {}",
                HEADER.join(",")
            )));
        }
        let key = file_key(path);
        let mut chunk = 0usize;
        let mut events = Vec::with_capacity(chunk_rows.min(1 << 20));
        let mut failed = Vec::new();
        let mut records = reader.records();
        let mut line: u64 = 1;
        loop {
            let next = records.next();
            let done = next.is_none();
            if let Some(record) = next {
                line += 1;
                match record {
                    Ok(record) => match map_record(&record, line, &key, source_id) {
                        Ok(event) => events.push(event),
                        Err(row) => failed.push(row_failure(&row, &record.iter().collect::<Vec<_>>().join(","))),
                    },
                    Err(e) => failed.push(row_failure(&RowError { line, message: e.to_string() }, "")),
                }
            }
            if (done && (!events.is_empty() || !failed.is_empty())) || events.len() + failed.len() >= chunk_rows {
                let name = format!("backfill-{key}-{chunk:05}");
                summary.add(writer.write(&name, std::mem::take(&mut events), std::mem::take(&mut failed)).await?);
                chunk += 1;
            }
            if done {
                break;
            }
        }
        bar.finish_and_clear();
    }
    Ok(summary)
}

fn row_failure(row: &RowError, text: &str) -> event_model::FailedEvent {
    event_model::FailedEvent::new(
        event_model::failed::FailureStage::Batcher,
        None,
        Some(row.line as usize),
        vec![event_model::FieldError::new("row", "backfill", format!("line {}: {}", row.line, row.message))],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> csv::StringRecord {
        csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes()).records().next().unwrap().unwrap()
    }

    #[test]
    fn a_purchase_row_maps_onto_the_contract() {
        let row = record(
            "2019-10-01 00:02:14 UTC,purchase,1004856,2053013555631882655,electronics.smartphone,samsung,130.76,543272936,8187d148-3c41-46d4-b0c0-9c08cd9dc564",
        );
        let event = map_record(&row, 2, "f", "rees46").unwrap();
        assert_eq!(event.event_type, EventType::Purchase);
        assert_eq!(event.event_time.to_rfc3339(), "2019-10-01T00:02:14+00:00");
        assert_eq!(event.revenue.unwrap().to_string(), "130.76");
        assert_eq!(event.user_id.as_deref(), Some("543272936"));
        assert_eq!(event.session_id.as_deref(), Some("8187d148-3c41-46d4-b0c0-9c08cd9dc564"));
        assert!(event.order_id.unwrap().starts_with("8187d148"));
        let again = map_record(&row, 2, "f", "rees46").unwrap();
        assert_eq!(again.event_id, event.event_id, "ids are deterministic");
    }

    #[test]
    fn empty_optional_columns_become_nulls_and_bad_rows_are_named() {
        let view = map_record(
            &record("2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde"),
            2,
            "f",
            "s",
        )
        .unwrap();
        assert_eq!(view.category_code, None);
        assert_eq!(view.event_type, EventType::ProductView);
        assert_eq!(view.revenue, None);
        let bad = map_record(&record("yesterday,view,1,2,,b,1,2,3"), 7, "f", "s").unwrap_err();
        assert_eq!(bad.line, 7);
        assert!(bad.message.contains("event_time"));
        let bad = map_record(&record("2019-10-01 00:00:00 UTC,wishlist,1,2,,b,1,2,3"), 8, "f", "s").unwrap_err();
        assert!(bad.message.contains("wishlist"));
    }
}
