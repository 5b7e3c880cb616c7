//! The queue encoding of a stored event, written by hand.
//!
//! [`Event::to_json_bytes`] is on the collector's path for every accepted event. Through serde
//! the encoding spent most of its time formatting timestamps with `core::fmt` and checking
//! strings for escapes one byte at a time; this writer produces the same bytes — a test holds it
//! to `serde_json::to_vec` on generated events — in a fraction of the time:
//!
//! * keys in declaration ([`crate::schema::FIELDS`]) order, absent optional fields left out;
//! * timestamps as chrono writes them (RFC 3339, `Z`, 0, 3, 6 or 9 fractional digits);
//! * strings copied as they are unless they need escaping, which serde_json then does;
//! * money as its decimal string.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::event::Event;
use crate::money::Money;

/// `,"name":` as one static byte string.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}

/// Writes `event` as JSON into `out`.
pub(crate) fn write_event<S: AsRef<str>>(event: &Event<S>, out: &mut Vec<u8>) {
    let e = event;
    let mut w = Writer { out };
    // `event_id` always comes first; every later key brings its comma.
    w.out.extend_from_slice(b"{\"event_id\":");
    write_string(w.out, e.event_id.as_ref());
    w.boolean(key!("event_id_generated"), e.event_id_generated);
    w.text(key!("event_type"), e.event_type.as_str());
    w.text(key!("event_name"), e.event_name.as_ref());
    w.time(key!("event_time"), e.event_time);
    w.opt_time(key!("client_event_time"), e.client_event_time);
    w.boolean(key!("event_time_out_of_range"), e.event_time_out_of_range);
    w.opt_time(key!("sent_at"), e.sent_at);
    w.time(key!("received_at"), e.received_at);
    w.text(key!("source_id"), e.source_id.as_ref());
    w.opt_text(key!("anonymous_id"), &e.anonymous_id);
    w.opt_text(key!("user_id"), &e.user_id);
    w.opt_text(key!("session_id"), &e.session_id);
    w.opt_text(key!("page_url"), &e.page_url);
    w.opt_text(key!("page_path"), &e.page_path);
    w.opt_text(key!("page_referrer"), &e.page_referrer);
    w.opt_text(key!("page_title"), &e.page_title);
    w.opt_text(key!("product_id"), &e.product_id);
    w.opt_text(key!("category_id"), &e.category_id);
    w.opt_text(key!("category_code"), &e.category_code);
    w.opt_text(key!("brand"), &e.brand);
    w.opt_money(key!("price"), e.price);
    w.opt_text(key!("currency"), &e.currency);
    w.opt_int(key!("quantity"), e.quantity);
    w.opt_text(key!("order_id"), &e.order_id);
    w.opt_money(key!("revenue"), e.revenue);
    w.opt_text(key!("order_currency"), &e.order_currency);
    w.opt_text(key!("search_query"), &e.search_query);
    if let Some(platform) = e.platform {
        w.text(key!("platform"), platform.as_str());
    }
    w.opt_text(key!("app_name"), &e.app_name);
    w.opt_text(key!("app_version"), &e.app_version);
    w.opt_text(key!("locale"), &e.locale);
    w.opt_int(key!("screen_width"), e.screen_width);
    w.opt_int(key!("screen_height"), e.screen_height);
    w.opt_text(key!("library_name"), &e.library_name);
    w.opt_text(key!("library_version"), &e.library_version);
    w.opt_text(key!("utm_source"), &e.utm_source);
    w.opt_text(key!("utm_medium"), &e.utm_medium);
    w.opt_text(key!("utm_campaign"), &e.utm_campaign);
    w.opt_text(key!("utm_term"), &e.utm_term);
    w.opt_text(key!("utm_content"), &e.utm_content);
    w.opt_text(key!("ip_truncated"), &e.ip_truncated);
    w.opt_text(key!("user_agent"), &e.user_agent);
    w.opt_text(key!("ua_browser"), &e.ua_browser);
    w.opt_text(key!("ua_browser_version"), &e.ua_browser_version);
    w.opt_text(key!("ua_os"), &e.ua_os);
    w.opt_text(key!("ua_os_version"), &e.ua_os_version);
    w.opt_text(key!("ua_device_class"), &e.ua_device_class);
    w.boolean(key!("is_bot"), e.is_bot);
    w.opt_text(key!("properties"), &e.properties);
    w.out.push(b'}');
}

struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

impl Writer<'_> {
    /// `key` is `,"name":` (see `key!`).
    fn key(&mut self, key: &[u8]) {
        self.out.extend_from_slice(key);
    }

    fn text(&mut self, key: &[u8], value: &str) {
        self.key(key);
        write_string(self.out, value);
    }

    fn opt_text<S: AsRef<str>>(&mut self, key: &[u8], value: &Option<S>) {
        if let Some(value) = value {
            self.text(key, value.as_ref());
        }
    }

    fn boolean(&mut self, key: &[u8], value: bool) {
        self.key(key);
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn opt_int(&mut self, key: &[u8], value: Option<i64>) {
        if let Some(value) = value {
            self.key(key);
            self.out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }

    fn time(&mut self, key: &[u8], value: DateTime<Utc>) {
        self.key(key);
        write_timestamp(self.out, value);
    }

    fn opt_time(&mut self, key: &[u8], value: Option<DateTime<Utc>>) {
        if let Some(value) = value {
            self.time(key, value);
        }
    }

    fn opt_money(&mut self, key: &[u8], value: Option<Money>) {
        if let Some(value) = value {
            self.key(key);
            // Amounts are decimal digits, a sign and a point: nothing to escape.
            self.out.push(b'"');
            self.out.extend_from_slice(value.to_string().as_bytes());
            self.out.push(b'"');
        }
    }
}

/// The bytes serde_json escapes in a string.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A JSON string: copied as it is when nothing in it needs escaping, else escaped by
/// serde_json (quotes, backslashes and control characters; serde_json leaves the rest).
fn write_string(out: &mut Vec<u8>, value: &str) {
    let plain = value.bytes().all(|b| !NEEDS_ESCAPE[usize::from(b)]);
    if plain {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

/// A timestamp as chrono serializes a `DateTime<Utc>`: `YYYY-MM-DDTHH:MM:SS`, then `.mmm`,
/// `.uuuuuu` or `.nnnnnnnnn` (the shortest that is exact; nothing for whole seconds), then `Z`.
fn write_timestamp(out: &mut Vec<u8>, value: DateTime<Utc>) {
    // Fields of the naive UTC value: DateTime's own accessors redo the offset each call.
    let value = value.naive_utc();
    let year = value.year();
    let nanos = value.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Five-digit years and leap seconds are chrono's to spell.
        let _ = serde_json::to_writer(&mut *out, &value.and_utc());
        return;
    }
    let mut buf = [0u8; 32];
    let year = year as u32;
    let mut n = 0;
    let mut digits = |buf: &mut [u8; 32], value: u32, width: u32, sep: Option<u8>| {
        for i in (0..width).rev() {
            buf[n] = b'0' + (value / 10u32.pow(i) % 10) as u8;
            n += 1;
        }
        if let Some(sep) = sep {
            buf[n] = sep;
            n += 1;
        }
    };
    digits(&mut buf, year, 4, Some(b'-'));
    digits(&mut buf, value.month(), 2, Some(b'-'));
    digits(&mut buf, value.day(), 2, Some(b'T'));
    digits(&mut buf, value.hour(), 2, Some(b':'));
    digits(&mut buf, value.minute(), 2, Some(b':'));
    digits(&mut buf, value.second(), 2, None);
    if nanos != 0 {
        let (fraction, width) = if nanos.is_multiple_of(1_000_000) {
            (nanos / 1_000_000, 3)
        } else if nanos.is_multiple_of(1_000) {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        digits(&mut buf, 0, 0, Some(b'.'));
        digits(&mut buf, fraction, width, None);
    }
    digits(&mut buf, 0, 0, Some(b'Z'));
    out.push(b'"');
    out.extend_from_slice(&buf[..n]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn timestamps_match_chrono_at_every_precision() {
        let base = Utc.with_ymd_and_hms(2026, 11, 24, 10, 15, 30).unwrap();
        for nanos in [0, 120_000_000, 120_500_000, 120_500_001, 1_000, 1, 999_999_999] {
            let time = base + chrono::TimeDelta::nanoseconds(nanos);
            let mut ours = Vec::new();
            write_timestamp(&mut ours, time);
            assert_eq!(ours, serde_json::to_vec(&time).unwrap(), "{nanos} ns");
        }
        let mut early = Vec::new();
        write_timestamp(&mut early, Utc.with_ymd_and_hms(7, 1, 2, 3, 4, 5).unwrap());
        assert_eq!(early, b"\"0007-01-02T03:04:05Z\"");
    }

    /// Properties over generated events (`crate::strategies`); `make fuzz` runs them longer.
    mod proptests {
        use proptest::prelude::*;

        use super::*;
        use crate::strategies;

        // Generating an event costs far more than encoding it: fewer cases over events than
        // over timestamps and text in `cargo test`; `make fuzz` runs both longer.
        proptest! {
            #![proptest_config(strategies::config(96))]

            #[test]
            fn writes_the_same_bytes_as_serde(event in strategies::event()) {
                let mut ours = Vec::new();
                write_event(&event, &mut ours);
                let serde = serde_json::to_vec(&event).unwrap();
                prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde));
                // The borrowed view the collector encodes writes the same bytes.
                prop_assert_eq!(event.view().to_json_bytes(), serde);
            }

            #[test]
            fn the_encoding_decodes_to_the_same_event(event in strategies::event()) {
                prop_assert_eq!(Event::from_json_bytes(&event.to_json_bytes()).unwrap(), event);
            }
        }

        proptest! {
            #![proptest_config(strategies::config(2048))]

            #[test]
            fn timestamps_are_written_as_chrono_writes_them(time in strategies::timestamp()) {
                let mut ours = Vec::new();
                write_timestamp(&mut ours, time);
                prop_assert_eq!(String::from_utf8_lossy(&ours), serde_json::to_string(&time).unwrap());
                let read: DateTime<Utc> = serde_json::from_slice(&ours).unwrap();
                prop_assert_eq!(read, time);
            }

            #[test]
            fn strings_are_written_as_serde_writes_them(text in strategies::text()) {
                let mut ours = Vec::new();
                write_string(&mut ours, &text);
                prop_assert_eq!(ours, serde_json::to_vec(&text).unwrap());
            }
        }
    }
}
