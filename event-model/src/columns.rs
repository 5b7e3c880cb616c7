//! Stored events straight into Arrow columns: the batcher's hot path.
//!
//! Decoding a queue message into an [`Event`] allocates a `String` for every text field, which
//! [`crate::schema::to_record_batch`] then copies again into Arrow buffers. [`StoredRow::parse`]
//! instead borrows every text value from the message (only a string with JSON escapes is copied),
//! and [`ColumnBuilders::append`] copies it once, into its column. Both paths produce the same
//! columns: [`StoredRow::from_event`] is how events reach Arrow too, and the tests hold
//! `parse(event.to_json_bytes())` equal to `from_event(event)` field by field.
//!
//! A row is validated as strictly as [`Event::from_json_bytes`] validates it: required columns
//! present and not null, every value of its column's type, `event_type` and `platform` from their
//! closed lists, timestamps RFC 3339 and money decimal. Unknown keys are ignored, as they are by
//! `Event`'s decoder, so a newer writer's extra column does not stop an older batcher.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::event::{Event, EventType, Platform};
use crate::money::{MONEY_PRECISION, MONEY_SCALE, Money};
use crate::schema::{ColumnType, FIELDS, arrow_schema};

/// Number of stored columns.
pub const COLUMNS: usize = FIELDS.len();
const _: () = assert!(COLUMNS <= 64, "StoredRow tracks seen columns in a u64");

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The position of column `name` in [`FIELDS`]; a compile error when there is no such column.
pub const fn column_index(name: &str) -> usize {
    let mut i = 0;
    while i < FIELDS.len() {
        if same(FIELDS[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("no such column")
}

/// Position of `event_id`.
pub const EVENT_ID: usize = column_index("event_id");
/// Position of `event_time`, the column rows are bucketed into hours and sorted by.
pub const EVENT_TIME: usize = column_index("event_time");
const EVENT_TYPE: usize = column_index("event_type");
const PLATFORM: usize = column_index("platform");

/// One column value of a [`StoredRow`]. Text borrows from the decoded message where it can.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// No value (JSON `null` or an absent key).
    Null,
    /// UTF-8 text.
    Text(Cow<'a, str>),
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Money as an integer count of 10⁻⁹ units (`DECIMAL(38, 9)`).
    Decimal(i128),
}

/// One stored event as its column values, in [`FIELDS`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow<'a> {
    values: [Value<'a>; COLUMNS],
}

impl<'a> StoredRow<'a> {
    /// Decodes a queue message (an [`Event`] as JSON), borrowing text from `message`. The hot
    /// path uses [`parse_with`](Self::parse_with), which does not move the row.
    pub fn parse(message: &'a [u8]) -> Result<Self, serde_json::Error> {
        Self::parse_with(message, StoredRow::clone)
    }

    /// Decodes a queue message like [`parse`](Self::parse) and hands the row to `use_row`. On the
    /// hot path the row is built in place and never moved: at 50 columns it is 1.6 KB, and
    /// returning it by value cost a tenth of the batcher's time in copies.
    pub fn parse_with<R>(message: &'a [u8], use_row: impl FnOnce(&StoredRow<'a>) -> R) -> Result<R, serde_json::Error> {
        if let Ok(text) = simdutf8::basic::from_utf8(message) {
            let mut row = StoredRow { values: [const { Value::Null }; COLUMNS] };
            if parse_common(text, &mut row.values) {
                return Ok(use_row(&row));
            }
        }
        Ok(use_row(&parse_general(message)?))
    }

    /// The columns of `event`, borrowing its text.
    pub fn from_event(event: &'a Event) -> Self {
        fn text(value: &str) -> Value<'_> {
            Value::Text(Cow::Borrowed(value))
        }
        fn opt_text(value: &Option<String>) -> Value<'_> {
            value.as_deref().map_or(Value::Null, text)
        }
        fn time(value: DateTime<Utc>) -> Value<'static> {
            Value::Timestamp(value.timestamp_micros())
        }
        fn opt_time(value: Option<DateTime<Utc>>) -> Value<'static> {
            value.map_or(Value::Null, time)
        }
        fn money(value: Option<Money>) -> Value<'static> {
            value.map_or(Value::Null, |m| Value::Decimal(m.to_scaled_i128()))
        }
        fn int(value: Option<i64>) -> Value<'static> {
            value.map_or(Value::Null, Value::Int)
        }
        let e = event;
        // FIELDS order; `from_event_matches_parse_for_every_column` checks it against the keys.
        Self {
            values: [
                text(&e.event_id),
                Value::Bool(e.event_id_generated),
                text(e.event_type.as_str()),
                text(&e.event_name),
                time(e.event_time),
                opt_time(e.client_event_time),
                Value::Bool(e.event_time_out_of_range),
                opt_time(e.sent_at),
                time(e.received_at),
                text(&e.source_id),
                opt_text(&e.anonymous_id),
                opt_text(&e.user_id),
                opt_text(&e.session_id),
                opt_text(&e.page_url),
                opt_text(&e.page_path),
                opt_text(&e.page_referrer),
                opt_text(&e.page_title),
                opt_text(&e.product_id),
                opt_text(&e.category_id),
                opt_text(&e.category_code),
                opt_text(&e.brand),
                money(e.price),
                opt_text(&e.currency),
                int(e.quantity),
                opt_text(&e.order_id),
                money(e.revenue),
                opt_text(&e.order_currency),
                opt_text(&e.search_query),
                e.platform.map_or(Value::Null, |p| text(p.as_str())),
                opt_text(&e.app_name),
                opt_text(&e.app_version),
                opt_text(&e.locale),
                int(e.screen_width),
                int(e.screen_height),
                opt_text(&e.library_name),
                opt_text(&e.library_version),
                opt_text(&e.utm_source),
                opt_text(&e.utm_medium),
                opt_text(&e.utm_campaign),
                opt_text(&e.utm_term),
                opt_text(&e.utm_content),
                opt_text(&e.ip_truncated),
                opt_text(&e.user_agent),
                opt_text(&e.ua_browser),
                opt_text(&e.ua_browser_version),
                opt_text(&e.ua_os),
                opt_text(&e.ua_os_version),
                opt_text(&e.ua_device_class),
                Value::Bool(e.is_bot),
                opt_text(&e.properties),
            ],
        }
    }

    /// The column values, in [`FIELDS`] order.
    pub fn values(&self) -> &[Value<'a>; COLUMNS] {
        &self.values
    }

    /// The event id.
    pub fn event_id(&self) -> &str {
        match &self.values[EVENT_ID] {
            Value::Text(id) => id,
            _ => "",
        }
    }

    /// The corrected event time, in microseconds since the Unix epoch.
    pub fn event_time_micros(&self) -> i64 {
        match self.values[EVENT_TIME] {
            Value::Timestamp(micros) => micros,
            _ => 0,
        }
    }
}

fn parse_general(message: &[u8]) -> Result<StoredRow<'_>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(message);
    let row = deserializer.deserialize_map(RowVisitor)?;
    deserializer.end()?;
    Ok(row)
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = StoredRow<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored event (JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StoredRow<'de>, A::Error> {
        let mut values: [Value<'de>; COLUMNS] = [const { Value::Null }; COLUMNS];
        let mut seen = 0u64;
        // The collector writes keys in FIELDS order, so the next key is almost always this one.
        let mut expected = 0;
        while let Some(key) = map.next_key_seed(KeySeed { expected })? {
            let Some(index) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if seen & (1 << index) != 0 {
                return Err(de::Error::duplicate_field(FIELDS[index].name));
            }
            seen |= 1 << index;
            values[index] = map.next_value_seed(ValueSeed(FIELDS[index].column_type))?;
            expected = index + 1;
        }
        match check_row(&values) {
            Ok(()) => {}
            Err(RowError::Missing(name)) => return Err(de::Error::missing_field(name)),
            Err(RowError::EventType(name)) => return Err(de::Error::unknown_variant(name, &EVENT_TYPE_NAMES)),
            Err(RowError::Platform(name)) => return Err(de::Error::unknown_variant(name, &PLATFORM_NAMES)),
        }
        Ok(StoredRow { values })
    }
}

const fn required_count() -> usize {
    let (mut count, mut i) = (0, 0);
    while i < FIELDS.len() {
        if !FIELDS[i].nullable {
            count += 1;
        }
        i += 1;
    }
    count
}

/// Positions of the columns every row must have.
const REQUIRED: [usize; required_count()] = {
    let mut indices = [0; required_count()];
    let (mut next, mut i) = (0, 0);
    while i < FIELDS.len() {
        if !FIELDS[i].nullable {
            indices[next] = i;
            next += 1;
        }
        i += 1;
    }
    indices
};

enum RowError<'r> {
    Missing(&'static str),
    EventType(&'r str),
    Platform(&'r str),
}

/// What both decoders check once every key is read: required columns set, closed lists kept.
fn check_row<'r>(values: &'r [Value<'_>; COLUMNS]) -> Result<(), RowError<'r>> {
    for &index in &REQUIRED {
        if matches!(values[index], Value::Null) {
            return Err(RowError::Missing(FIELDS[index].name));
        }
    }
    if let Value::Text(name) = &values[EVENT_TYPE]
        && !EventType::ALL.iter().any(|t| same_key(t.as_str(), name))
    {
        return Err(RowError::EventType(name));
    }
    if let Value::Text(name) = &values[PLATFORM]
        && !Platform::ALL.iter().any(|p| same_key(p.as_str(), name))
    {
        return Err(RowError::Platform(name));
    }
    Ok(())
}

/// Decodes the exact shape the pipeline writes — `Event`'s JSON: no whitespace, keys in
/// [`FIELDS`] order (absent ones skipped), timestamps in the common
/// RFC 3339 shape, money as plain decimal strings — without a general JSON parser (a string with
/// escapes is handed to serde_json on its own). Returns
/// `None` for anything else, valid or not, and the caller falls back to the general decoder, which
/// also produces every error; so this path only ever accepts what that one accepts, with the
/// same values (`common_path_agrees_with_the_general_decoder_on_mutated_messages`).
fn parse_common<'a>(text: &'a str, values: &mut [Value<'a>; COLUMNS]) -> bool {
    parse_common_into(text, values).is_some()
}

/// [`parse_common`]'s body; `None` is "not the common shape". `values` starts all null.
fn parse_common_into<'a>(text: &'a str, values: &mut [Value<'a>; COLUMNS]) -> Option<()> {
    let b = text.as_bytes();
    // JSON forbids raw control characters in strings; the general decoder reports them.
    // (`min` over the whole message vectorizes; a short-circuiting search does not.)
    if b.first() != Some(&b'{') || b.iter().copied().min().is_none_or(|c| c < 0x20) {
        return None;
    }
    let mut next = 0;
    let mut pos = 1;
    if b.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            let index = (next..COLUMNS).find(|&i| {
                let name = FIELDS[i].name.as_bytes();
                b.get(pos) == Some(&b'"')
                    && b.get(pos + 1..pos + 1 + name.len()).is_some_and(|key| same_key_bytes(key, name))
                    && b.get(pos + 1 + name.len()) == Some(&b'"')
                    && b.get(pos + 2 + name.len()) == Some(&b':')
            })?;
            pos += FIELDS[index].name.len() + 3;
            let (value, end) = common_value(text, pos, FIELDS[index].column_type)?;
            values[index] = value;
            next = index + 1;
            pos = end + 1;
            match b.get(end) {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return None,
            }
        }
    }
    if pos != b.len() || check_row(values).is_err() {
        return None;
    }
    Some(())
}

/// One value starting at `pos`, and the position just after it.
fn common_value(text: &str, pos: usize, column_type: ColumnType) -> Option<(Value<'_>, usize)> {
    let b = text.as_bytes();
    let literal = |word: &[u8]| b.get(pos..pos + word.len()).is_some_and(|found| same_key_bytes(found, word));
    match (b.get(pos)?, column_type) {
        (b'n', _) if literal(b"null") => Some((Value::Null, pos + 4)),
        (b't', ColumnType::Bool) if literal(b"true") => Some((Value::Bool(true), pos + 4)),
        (b'f', ColumnType::Bool) if literal(b"false") => Some((Value::Bool(false), pos + 5)),
        (b'"', _) => {
            let start = pos + 1;
            let mut end = start;
            let mut escaped = false;
            loop {
                end += memchr::memchr2(b'"', b'\\', b.get(end..)?)?;
                if b[end] == b'"' {
                    break;
                }
                escaped = true;
                end += 2; // the backslash and the character it escapes
            }
            let value = match column_type {
                // Escapes (the properties column's JSON text always has some) are undone by
                // serde_json, on this one string.
                ColumnType::String if escaped => {
                    Value::Text(Cow::Owned(serde_json::from_str(text.get(pos..=end)?).ok()?))
                }
                // Both ends are ASCII quotes, so this slice is on character boundaries.
                ColumnType::String => Value::Text(Cow::Borrowed(text.get(start..end)?)),
                ColumnType::Timestamp if !escaped => Value::Timestamp(micros(parse_common_timestamp(&b[start..end])?)),
                ColumnType::Decimal if !escaped => Value::Decimal(parse_plain_decimal(&b[start..end])?),
                _ => return None,
            };
            Some((value, end + 1))
        }
        (b'-' | b'0'..=b'9', ColumnType::Int64) => {
            let negative = b[pos] == b'-';
            let start = pos + usize::from(negative);
            let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
            // No leading zeros (invalid JSON), no fraction or exponent, no i64 overflow.
            if len == 0 || len > 18 || (len > 1 && b[start] == b'0') {
                return None;
            }
            if matches!(b.get(start + len), Some(b'.' | b'e' | b'E')) {
                return None;
            }
            let magnitude = b[start..start + len].iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
            Some((Value::Int(if negative { -magnitude } else { magnitude }), start + len))
        }
        _ => None,
    }
}

/// `-?digits(.digits)?` with at most 18 integer and 9 fractional digits, as 10⁻⁹ units; `None`
/// for any other shape (exponents, signs, long values), which [`Money::parse`] decides.
fn parse_plain_decimal(b: &[u8]) -> Option<i128> {
    let (negative, b) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 || int_len > 18 {
        return None;
    }
    let mut units = b[..int_len].iter().fold(0i128, |n, c| n * 10 + i128::from(c - b'0'));
    let mut scale = 0;
    if let Some(fraction) = b[int_len..].strip_prefix(b".") {
        if fraction.is_empty() || fraction.len() > MONEY_SCALE as usize || !fraction.iter().all(u8::is_ascii_digit) {
            return None;
        }
        units = fraction.iter().fold(units, |n, c| n * 10 + i128::from(c - b'0'));
        scale = fraction.len() as u32;
    } else if int_len != b.len() {
        return None;
    }
    units *= 10i128.pow(MONEY_SCALE - scale);
    Some(if negative { -units } else { units })
}

const EVENT_TYPE_NAMES: [&str; EventType::ALL.len()] = {
    let mut names = [""; EventType::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = EventType::ALL[i].as_str();
        i += 1;
    }
    names
};

const PLATFORM_NAMES: [&str; Platform::ALL.len()] = {
    let mut names = [""; Platform::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Platform::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Decodes an object key to its column position (`None`: not a column, ignored).
struct KeySeed {
    expected: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        if FIELDS.get(self.expected).is_some_and(|spec| same_key(spec.name, key)) {
            return Ok(Some(self.expected));
        }
        Ok(FIELDS.iter().position(|spec| spec.name == key))
    }
}

/// `a == b` for column names, compared inline: a call to the C library's `bcmp` per key was a
/// tenth of the decoding time.
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    same_key_bytes(a.as_bytes(), b.as_bytes())
}

#[inline]
fn same_key_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a_words = a.chunks_exact(8);
    let mut b_words = b.chunks_exact(8);
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().unwrap_or_default());
    for (x, y) in a_words.by_ref().zip(b_words.by_ref()) {
        if word(x) != word(y) {
            return false;
        }
    }
    a_words.remainder().iter().zip(b_words.remainder()).all(|(x, y)| x == y)
}

/// Decodes one value of a column of the given type.
struct ValueSeed(ColumnType);

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value<'de>, D::Error> {
        match self.0 {
            ColumnType::Decimal => {
                Ok(Option::<Money>::deserialize(deserializer)?
                    .map_or(Value::Null, |m| Value::Decimal(m.to_scaled_i128())))
            }
            column_type => deserializer.deserialize_any(ValueVisitor(column_type)),
        }
    }
}

struct ValueVisitor(ColumnType);

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            ColumnType::String => "a string or null",
            ColumnType::Bool => "a boolean",
            ColumnType::Timestamp => "an RFC 3339 timestamp or null",
            ColumnType::Decimal => "a decimal amount or null",
            ColumnType::Int64 => "an integer or null",
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value<'de>, E> {
        match self.0 {
            ColumnType::Bool => Ok(Value::Bool(v)),
            _ => Err(E::invalid_type(de::Unexpected::Bool(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value<'de>, E> {
        match self.0 {
            ColumnType::Int64 => Ok(Value::Int(v)),
            _ => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value<'de>, E> {
        match (self.0, i64::try_from(v)) {
            (ColumnType::Int64, Ok(v)) => Ok(Value::Int(v)),
            _ => Err(E::invalid_type(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Value<'de>, E> {
        match self.0 {
            ColumnType::String => Ok(Value::Text(Cow::Borrowed(v))),
            _ => self.visit_str(v),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value<'de>, E> {
        match self.0 {
            ColumnType::String => Ok(Value::Text(Cow::Owned(v.to_owned()))),
            ColumnType::Timestamp => parse_timestamp_micros(v)
                .map(Value::Timestamp)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self)),
            _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
}

/// Parses an RFC 3339 timestamp to microseconds since the Unix epoch (sub-microsecond digits
/// are truncated, as `DateTime::timestamp_micros` does). The common shape the pipeline writes,
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, is read directly; anything else goes through
/// chrono, so exactly the texts chrono accepts are accepted.
pub fn parse_timestamp_micros(text: &str) -> Option<i64> {
    match parse_common_timestamp(text.as_bytes()) {
        Some(time) => Some(micros(time)),
        None => text.parse::<DateTime<FixedOffset>>().ok().map(|t| t.with_timezone(&Utc).timestamp_micros()),
    }
}

/// Microseconds since the epoch of (seconds, nanoseconds), truncating as chrono does.
fn micros((seconds, nanos): (i64, u32)) -> i64 {
    seconds * 1_000_000 + i64::from(nanos / 1_000)
}

/// Parses an RFC 3339 timestamp exactly as chrono's `DateTime<FixedOffset>` parser does (the
/// error is chrono's), reading the common shape directly (see [`parse_timestamp_micros`]).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match parse_common_timestamp(text.as_bytes()).and_then(|(s, n)| DateTime::from_timestamp(s, n)) {
        Some(time) => Ok(time),
        None => text.parse::<DateTime<FixedOffset>>().map(|t| t.with_timezone(&Utc)),
    }
}

/// Seconds since the Unix epoch and nanoseconds of `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`
/// with a valid date, no leap second and at most 9 fractional digits; `None` for anything else.
fn parse_common_timestamp(b: &[u8]) -> Option<(i64, u32)> {
    fn digits(b: &[u8]) -> Option<i64> {
        let mut value = 0i64;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(c - b'0');
        }
        Some(value)
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None; // leap seconds and bad dates: chrono decides
    }
    let mut rest = &b[19..];
    let mut nanos = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 || len > 9 {
            return None;
        }
        nanos = u32::try_from(digits(&fraction[..len])? * 10i64.pow(9 - len as u32)).ok()?;
        rest = &fraction[len..];
    }
    let offset_seconds = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some((seconds, nanos))
}

/// One typed builder per column of a type, with the column's position in [`FIELDS`].
struct Typed<B> {
    columns: Vec<(usize, B)>,
}

impl<B> Typed<B> {
    fn new(column_type: ColumnType, make: impl Fn() -> B) -> Self {
        let columns = FIELDS
            .iter()
            .enumerate()
            .filter(|(_, spec)| spec.column_type == column_type)
            .map(|(index, _)| (index, make()))
            .collect();
        Self { columns }
    }

    /// Appends each builder's value from `values`; `value` returns `None` for a null (or, which
    /// rows never hold, a value of another type).
    #[inline(always)]
    fn append<'v, T>(
        &mut self,
        values: &'v [Value<'_>; COLUMNS],
        value: impl Fn(&'v Value<'_>) -> Option<T>,
        append_value: impl Fn(&mut B, T),
        append_null: impl Fn(&mut B),
    ) {
        for (index, builder) in &mut self.columns {
            match value(&values[*index]) {
                Some(v) => append_value(builder, v),
                None => {
                    debug_assert_eq!(values[*index], Value::Null, "value of the wrong type for its column");
                    append_null(builder);
                }
            }
        }
    }

    fn finish_into(&mut self, columns: &mut [Option<ArrayRef>], finish: impl Fn(&mut B) -> ArrayRef) {
        for (index, builder) in &mut self.columns {
            columns[*index] = Some(finish(builder));
        }
    }
}

/// Arrow builders for every stored column: rows go in with [`append`](Self::append), a record
/// batch with [`arrow_schema`] comes out of [`finish`](Self::finish).
///
/// Builders are grouped by type, so appending a row is five tight loops with no dispatch on the
/// column's type; each reads its columns' values by position.
pub struct ColumnBuilders {
    schema: SchemaRef,
    text: Typed<StringBuilder>,
    bools: Typed<BooleanBuilder>,
    timestamps: Typed<TimestampMicrosecondBuilder>,
    decimals: Typed<Decimal128Builder>,
    ints: Typed<Int64Builder>,
    rows: usize,
    /// Rows, and text bytes per text column, to reserve when the next row arrives after a
    /// `finish`.
    reserve_rows: usize,
    reserve_bytes: Vec<usize>,
}

fn timestamp_builder(rows: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

fn decimal_builder(rows: usize) -> Decimal128Builder {
    Decimal128Builder::with_capacity(rows)
        .with_data_type(arrow_schema::DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE as i8))
}

impl ColumnBuilders {
    /// Builders that reserve room for `rows` rows when the first row arrives.
    pub fn with_capacity(rows: usize) -> Self {
        let text = Typed::new(ColumnType::String, || StringBuilder::with_capacity(0, 0));
        let reserve_bytes = vec![rows * 16; text.columns.len()];
        Self {
            schema: arrow_schema(),
            text,
            bools: Typed::new(ColumnType::Bool, || BooleanBuilder::with_capacity(0)),
            timestamps: Typed::new(ColumnType::Timestamp, || timestamp_builder(0)),
            decimals: Typed::new(ColumnType::Decimal, || decimal_builder(0)),
            ints: Typed::new(ColumnType::Int64, || Int64Builder::with_capacity(0)),
            rows: 0,
            reserve_rows: rows,
            reserve_bytes,
        }
    }

    /// Appends one row.
    pub fn append(&mut self, row: &StoredRow<'_>) {
        if self.rows == 0 {
            // Reserving only now keeps a finished, idle set of builders (an hour no longer
            // receiving events) from holding memory.
            let rows = self.reserve_rows;
            for ((_, builder), bytes) in self.text.columns.iter_mut().zip(&self.reserve_bytes) {
                *builder = StringBuilder::with_capacity(rows, *bytes);
            }
            self.bools.columns.iter_mut().for_each(|(_, b)| *b = BooleanBuilder::with_capacity(rows));
            self.timestamps.columns.iter_mut().for_each(|(_, b)| *b = timestamp_builder(rows));
            self.decimals.columns.iter_mut().for_each(|(_, b)| *b = decimal_builder(rows));
            self.ints.columns.iter_mut().for_each(|(_, b)| *b = Int64Builder::with_capacity(rows));
        }
        let values = &row.values;
        self.text.append(
            values,
            |v| match v {
                Value::Text(t) => Some(t.as_ref()),
                _ => None,
            },
            |b, t| b.append_value(t),
            StringBuilder::append_null,
        );
        self.bools.append(
            values,
            |v| match v {
                Value::Bool(x) => Some(*x),
                _ => None,
            },
            BooleanBuilder::append_value,
            BooleanBuilder::append_null,
        );
        self.timestamps.append(
            values,
            |v| match v {
                Value::Timestamp(x) => Some(*x),
                _ => None,
            },
            TimestampMicrosecondBuilder::append_value,
            TimestampMicrosecondBuilder::append_null,
        );
        self.decimals.append(
            values,
            |v| match v {
                Value::Decimal(x) => Some(*x),
                _ => None,
            },
            Decimal128Builder::append_value,
            Decimal128Builder::append_null,
        );
        self.ints.append(
            values,
            |v| match v {
                Value::Int(x) => Some(*x),
                _ => None,
            },
            Int64Builder::append_value,
            Int64Builder::append_null,
        );
        self.rows += 1;
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row has been appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The appended rows as one record batch. The next row reserves room for as many rows and
    /// text bytes as this batch has, so a steady stream of equal chunks does not regrow them.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        if self.rows > 0 {
            self.reserve_rows = self.rows;
        }
        for ((_, builder), reserve) in self.text.columns.iter().zip(&mut self.reserve_bytes) {
            let bytes = builder.values_slice().len();
            if bytes > 0 {
                *reserve = bytes;
            }
        }
        let mut columns: Vec<Option<ArrayRef>> = vec![None; COLUMNS];
        self.text.finish_into(&mut columns, |b| Arc::new(b.finish()));
        self.bools.finish_into(&mut columns, |b| Arc::new(b.finish()));
        self.timestamps.finish_into(&mut columns, |b| Arc::new(b.finish()));
        self.decimals.finish_into(&mut columns, |b| Arc::new(b.finish()));
        self.ints.finish_into(&mut columns, |b| Arc::new(b.finish()));
        self.rows = 0;
        let columns = columns
            .into_iter()
            .map(|column| column.ok_or_else(|| ArrowError::SchemaError("a column has no builder".into())))
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// An event with every column set, each to a value no other column has.
    pub(crate) fn full_event() -> Event {
        let at = |s: u32| Utc.with_ymd_and_hms(2026, 11, 24, 13, 5, s).unwrap();
        let mut e = Event::new("0195b3c2-7f00-7000-8000-000000000001", EventType::Purchase, at(1), at(2), "storefront");
        e.event_id_generated = true;
        e.event_name = "purchase-name".into();
        e.client_event_time = Some(at(3));
        e.event_time_out_of_range = true;
        e.sent_at = Some(at(4));
        let mut n = 0;
        let mut next = |prefix: &str| {
            n += 1;
            Some(format!("{prefix}-{n}"))
        };
        e.anonymous_id = next("anon");
        e.user_id = next("user");
        e.session_id = next("session");
        e.page_url = next("https://shop.example/url");
        e.page_path = next("/path");
        e.page_referrer = next("https://ref.example/");
        e.page_title = next("title é");
        e.product_id = next("product");
        e.category_id = next("category");
        e.category_code = next("electronics.phone");
        e.brand = next("brand");
        e.price = Some(Money::parse("19.990000001").unwrap());
        e.currency = Some("EUR".into());
        e.quantity = Some(3);
        e.order_id = next("order");
        e.revenue = Some(Money::parse("-59.97").unwrap());
        e.order_currency = Some("USD".into());
        e.search_query = next("query");
        e.platform = Some(Platform::Android);
        e.app_name = next("app");
        e.app_version = next("version");
        e.locale = Some("en-GB".into());
        e.screen_width = Some(1080);
        e.screen_height = Some(2400);
        e.library_name = next("library");
        e.library_version = next("library-version");
        e.utm_source = next("source");
        e.utm_medium = next("medium");
        e.utm_campaign = next("campaign");
        e.utm_term = next("term");
        e.utm_content = next("content");
        e.ip_truncated = Some("203.0.113.0".into());
        e.user_agent = next("Mozilla/5.0");
        e.ua_browser = next("Chrome");
        e.ua_browser_version = next("131");
        e.ua_os = next("Android");
        e.ua_os_version = next("15");
        e.ua_device_class = Some("mobile".into());
        e.is_bot = true;
        e.properties = Some(r#"{"colour":"red"}"#.into());
        e
    }

    #[test]
    fn from_event_matches_parse_for_every_column() {
        let event = full_event();
        let json = event.to_json_bytes();
        let parsed = StoredRow::parse(&json).unwrap();
        let direct = StoredRow::from_event(&event);
        for (i, spec) in FIELDS.iter().enumerate() {
            assert_ne!(direct.values[i], Value::Null, "full_event leaves {} empty", spec.name);
            assert_eq!(parsed.values[i], direct.values[i], "column {}", spec.name);
        }
        let minimal = Event::new(
            "id",
            EventType::PageView,
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.timestamp_opt(1, 0).unwrap(),
            "s",
        );
        assert_eq!(StoredRow::parse(&minimal.to_json_bytes()).unwrap(), StoredRow::from_event(&minimal));
    }

    #[test]
    fn parse_accepts_and_rejects_what_the_event_decoder_does() {
        let base: serde_json::Value = serde_json::from_slice(&full_event().to_json_bytes()).unwrap();
        let with = |key: &str, value: serde_json::Value| {
            let mut v = base.clone();
            v[key] = value;
            serde_json::to_vec(&v).unwrap()
        };
        let without = |key: &str| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(key);
            serde_json::to_vec(&v).unwrap()
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("missing required", without("event_id")),
            ("missing optional", without("user_id")),
            ("null required", with("received_at", serde_json::Value::Null)),
            ("null bool", with("is_bot", serde_json::Value::Null)),
            ("unknown key", with("added_in_a_later_version", serde_json::json!({"a": [1, 2]}))),
            ("bad event type", with("event_type", "refund".into())),
            ("bad platform", with("platform", "tv".into())),
            ("number as text", with("brand", 7.into())),
            ("text as number", with("quantity", "7".into())),
            ("float as integer", with("quantity", 2.5.into())),
            ("integer as bool", with("is_bot", 1.into())),
            ("huge integer", with("quantity", serde_json::json!(u64::MAX))),
            ("money as number", with("price", serde_json::json!(12.5))),
            ("money with 10 decimals", with("price", "1.0000000001".into())),
            ("money not a number", with("price", "cheap".into())),
            ("escaped text", with("page_title", "a\\b\n\u{1F600}".into())),
            ("offset time", with("sent_at", "2026-11-24T13:05:04.123456789+05:30".into())),
            ("negative offset", with("sent_at", "2026-11-24T23:59:59-00:30".into())),
            ("lower-case t", with("sent_at", "2026-11-24t13:05:04z".into())),
            ("space separator", with("sent_at", "2026-11-24 13:05:04Z".into())),
            ("leap second", with("sent_at", "2016-12-31T23:59:60Z".into())),
            ("leap day", with("sent_at", "2024-02-29T00:00:00Z".into())),
            ("not a leap day", with("sent_at", "2025-02-29T00:00:00Z".into())),
            ("year 1600 leap", with("sent_at", "1600-02-29T12:00:00.5Z".into())),
            ("before 1970", with("sent_at", "1969-12-31T23:59:59.999999Z".into())),
            ("ten fraction digits", with("sent_at", "2026-11-24T13:05:04.1234567891Z".into())),
            ("no offset", with("sent_at", "2026-11-24T13:05:04".into())),
            ("hour 24", with("sent_at", "2026-11-24T24:00:00Z".into())),
            ("time as number", with("sent_at", 1.into())),
        ];
        for (name, json) in cases {
            let expected = Event::from_json_bytes(&json);
            let got = StoredRow::parse(&json);
            match (&expected, &got) {
                (Ok(event), Ok(row)) => assert_eq!(*row, StoredRow::from_event(event), "{name}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{name}: Event decoder says {expected:?}, StoredRow::parse says {got:?}"),
            }
        }
        for bad in [&b"[]"[..], b"{", b"{} x", b"null", br#"{"event_id":"a","event_id":"b"}"#] {
            assert!(StoredRow::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    /// The common path alone.
    fn common(text: &str) -> Option<StoredRow<'_>> {
        let mut row = StoredRow { values: [const { Value::Null }; COLUMNS] };
        parse_common(text, &mut row.values).then_some(row)
    }

    #[test]
    fn the_pipeline_s_own_encoding_takes_the_common_path() {
        let minimal = Event::new(
            "id",
            EventType::Custom,
            Utc.timestamp_opt(7, 123_456_000).unwrap(),
            Utc.timestamp_opt(9, 0).unwrap(),
            "s",
        );
        let mut escaped = full_event();
        escaped.page_title = Some("tab\there \"quoted\" \u{1} \u{1F600}".into());
        for event in [full_event(), minimal.clone(), escaped] {
            let json = event.to_json_bytes();
            let row = common(std::str::from_utf8(&json).unwrap()).expect("common path");
            assert_eq!(row, StoredRow::from_event(&event));
        }
        // Empty columns are left out; messages written before that, with explicit nulls in
        // column order, still take the common path.
        let json = String::from_utf8(minimal.to_json_bytes()).unwrap();
        assert!(!json.contains("null") && !json.contains("user_id"), "{json}");
        let mut with_nulls = String::from("{");
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
        for spec in FIELDS {
            let value = object.get(spec.name).cloned().unwrap_or(serde_json::Value::Null);
            with_nulls.push_str(&format!("{:?}:{},", spec.name, value));
        }
        with_nulls.pop();
        with_nulls.push('}');
        assert_eq!(common(&with_nulls).expect("common path"), StoredRow::from_event(&minimal));
    }

    #[test]
    fn plain_decimals_match_money_parse() {
        for text in ["0", "-0", "35.57", "-59.97", "007.5", "1.000000001", "999999999999999999.999999999", "12."] {
            let expected = Money::parse(text).ok().map(Money::to_scaled_i128);
            match parse_plain_decimal(text.as_bytes()) {
                Some(units) => assert_eq!(Some(units), expected, "{text}"),
                None => assert!(text.ends_with('.'), "{text} should take the plain path"),
            }
        }
        for other in ["+1", ".5", "1e3", "1.0000000001", "1234567890123456789", " 1", "1_0", ""] {
            assert_eq!(parse_plain_decimal(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn timestamps_at_the_edges_of_the_common_shape_are_read_as_chrono_reads_them() {
        for text in [
            "2026-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2026-11-24T23:59:60Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T10:00:00.1234567891Z",
            "2026-11-24T10:00:00.Z",
            "2026-11-24t10:00:00z",
            "2026-11-24 10:00:00Z",
            "2026-11-24T10:00:00+24:00",
            "2026-11-24T10:00:00",
            "+12026-11-24T10:00:00Z",
        ] {
            let chrono = text.parse::<DateTime<FixedOffset>>().map(|t| t.with_timezone(&Utc));
            assert_eq!(parse_timestamp(text), chrono, "{text}");
        }
    }

    #[test]
    fn builders_make_the_schema_s_batch_and_start_over_after_finish() {
        let event = full_event();
        let json = event.to_json_bytes();
        let mut builders = ColumnBuilders::with_capacity(1);
        for _ in 0..3 {
            builders.append(&StoredRow::parse(&json).unwrap());
        }
        assert_eq!(builders.len(), 3);
        let batch = builders.finish().unwrap();
        assert!(builders.is_empty());
        assert_eq!(batch.schema(), arrow_schema());
        assert_eq!(batch.num_rows(), 3);
        builders.append(&StoredRow::from_event(&event));
        let again = builders.finish().unwrap();
        assert_eq!(again, batch.slice(0, 1));
    }

    /// Properties over generated events and messages (`crate::strategies`).
    mod proptests {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
        use arrow_array::{Array, BooleanArray};
        use proptest::prelude::*;

        use super::*;
        use crate::strategies;

        /// The edits a mutation makes to a message: delete a byte, overwrite one with a byte
        /// that matters to the grammar, or splice in a token.
        #[derive(Clone, Debug)]
        enum Edit {
            Delete(prop::sample::Index),
            Overwrite(prop::sample::Index, u8),
            Splice(prop::sample::Index, usize, &'static [u8]),
        }

        const TOKENS: &[&[u8]] = &[
            b"\"",
            b"\\",
            b",",
            b"}",
            b"{",
            b":",
            b"0",
            b"-",
            b".",
            b"e",
            b" ",
            b"null",
            b"true",
            b"\x01",
            b"\xc3\xa9",
            b"\xff",
            b"\"1\"",
            b"[]",
            b"1e400",
            b"99999999999999999999",
            b"\\u0000",
            b"\\ud800",
        ];

        fn edit() -> impl Strategy<Value = Edit> {
            prop_oneof![
                any::<prop::sample::Index>().prop_map(Edit::Delete),
                (any::<prop::sample::Index>(), prop::sample::select(&b"0123456789-.:,\"Z+TtEe{}"[..]))
                    .prop_map(|(at, byte)| Edit::Overwrite(at, byte)),
                (any::<prop::sample::Index>(), 0usize..3, prop::sample::select(TOKENS))
                    .prop_map(|(at, len, with)| Edit::Splice(at, len, with)),
            ]
        }

        fn apply(message: &mut Vec<u8>, edits: &[Edit]) {
            for edit in edits {
                if message.is_empty() {
                    return;
                }
                match edit {
                    Edit::Delete(at) => {
                        message.remove(at.index(message.len()));
                    }
                    Edit::Overwrite(at, byte) => {
                        let at = at.index(message.len());
                        message[at] = *byte;
                    }
                    Edit::Splice(at, len, with) => {
                        let at = at.index(message.len());
                        let len = (*len).min(message.len() - at);
                        message.splice(at..at + len, with.iter().copied());
                    }
                }
            }
        }

        /// The value of column `index` in `row` of `batch`, read back through Arrow's arrays.
        fn read_back<'b>(batch: &'b RecordBatch, index: usize, row: usize) -> Value<'b> {
            let column = batch.column(index);
            if column.is_null(row) {
                return Value::Null;
            }
            match FIELDS[index].column_type {
                ColumnType::String => Value::Text(Cow::Borrowed(column.as_string::<i32>().value(row))),
                ColumnType::Bool => Value::Bool(column.as_any().downcast_ref::<BooleanArray>().unwrap().value(row)),
                ColumnType::Timestamp => Value::Timestamp(column.as_primitive::<TimestampMicrosecondType>().value(row)),
                ColumnType::Decimal => Value::Decimal(column.as_primitive::<Decimal128Type>().value(row)),
                ColumnType::Int64 => Value::Int(column.as_primitive::<Int64Type>().value(row)),
            }
        }

        /// The decoders on `original` with `edits` applied: the common path accepts only what the
        /// general decoder accepts, with the same values, and the general decoder accepts what
        /// `Event`'s serde decoder accepts, with the same columns.
        fn decoders_agree_on(original: &[u8], edits: &[Edit]) -> Result<(), TestCaseError> {
            let mut message = original.to_vec();
            apply(&mut message, edits);
            let general = parse_general(&message);
            if let Some(row) = simdutf8::basic::from_utf8(&message).ok().and_then(common) {
                match &general {
                    Ok(expected) => prop_assert_eq!(&row, expected),
                    Err(error) => prop_assert!(false, "common path accepted what the decoder refuses ({})", error),
                }
            }
            let reference = Event::from_json_bytes(&message);
            match (&reference, &general) {
                (Ok(event), Ok(row)) => prop_assert_eq!(row, &StoredRow::from_event(event)),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(
                    false,
                    "Event decoder says {:?}, StoredRow says {:?}",
                    reference.as_ref().map(|_| "ok"),
                    general.as_ref().map(|_| "ok")
                ),
            }
            Ok(())
        }

        // Generating an event costs far more than checking it, so the properties over events run
        // fewer cases in `cargo test` than those over text and bytes; `make fuzz` runs both longer.
        proptest! {
            #![proptest_config(strategies::config(64))]

            /// Both decoders read the pipeline's own encoding (and serde's pretty one, which takes
            /// the general path) as exactly the event's columns.
            #[test]
            fn a_stored_event_parses_to_its_own_columns(event in strategies::event()) {
                let direct = StoredRow::from_event(&event);
                let json = event.to_json_bytes();
                prop_assert_eq!(&StoredRow::parse(&json).unwrap(), &direct);
                let pretty = serde_json::to_vec_pretty(&event).unwrap();
                prop_assert_eq!(&StoredRow::parse(&pretty).unwrap(), &direct);
                // Field for field against the event itself where the column is not plain text.
                let values = direct.values();
                prop_assert_eq!(&values[EVENT_TIME], &Value::Timestamp(event.event_time.timestamp_micros()));
                let price = column_index("price");
                prop_assert_eq!(&values[price], &event.price.map_or(Value::Null, |m| Value::Decimal(m.to_scaled_i128())));
            }

            /// Mutated messages: the common path accepts only what the general decoder accepts,
            /// with the same values, and the general decoder accepts what `Event`'s serde decoder
            /// accepts, with the same columns.
            #[test]
            fn decoders_agree_on_mutated_messages(
                event in strategies::event(),
                mutations in prop::collection::vec(prop::collection::vec(edit(), 1..4), 1..64),
            ) {
                let original = event.to_json_bytes();
                for edits in &mutations {
                    decoders_agree_on(&original, edits)?;
                }
            }

            /// Events → Arrow columns → read back: every column of every row as it went in
            /// (money to the unit, timestamps to the microsecond, nulls where empty).
            #[test]
            fn columns_read_back_as_the_events_went_in(events in prop::collection::vec(strategies::event(), 1..6)) {
                let mut builders = ColumnBuilders::with_capacity(2);
                for event in &events {
                    builders.append(&StoredRow::from_event(event));
                }
                let batch = builders.finish().unwrap();
                prop_assert_eq!(batch.num_rows(), events.len());
                for (row, event) in events.iter().enumerate() {
                    let expected = StoredRow::from_event(event);
                    for (index, spec) in FIELDS.iter().enumerate() {
                        prop_assert_eq!(&read_back(&batch, index, row), &expected.values()[index], "column {}", spec.name);
                    }
                    let received = column_index("received_at");
                    prop_assert_eq!(read_back(&batch, received, row), Value::Timestamp(strategies::to_micros(event.received_at).timestamp_micros()));
                }
            }
        }

        proptest! {
            #![proptest_config(strategies::config(2048))]

            /// Arbitrary bytes never panic either decoder.
            #[test]
            fn arbitrary_bytes_are_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = StoredRow::parse(&bytes);
                let _ = Event::from_json_bytes(&bytes);
            }

            /// Timestamps in every RFC 3339 spelling chrono writes, at every offset (whole minutes
            /// take the direct path, others chrono's), across chrono's whole range.
            #[test]
            fn timestamps_are_read_as_chrono_reads_them(
                time in strategies::timestamp(),
                offset_seconds in -86_399i32..86_400,
                whole_minutes in any::<bool>(),
                format in prop::sample::select(&[chrono::SecondsFormat::AutoSi, chrono::SecondsFormat::Micros, chrono::SecondsFormat::Secs, chrono::SecondsFormat::Nanos][..]),
                use_z in any::<bool>(),
            ) {
                let offset = FixedOffset::east_opt(if whole_minutes { offset_seconds / 60 * 60 } else { offset_seconds }).unwrap();
                // At chrono's ends a local time past its range cannot be written: such a time is
                // written in UTC instead (rejecting it made long runs give up on rejects).
                let offset = if time.naive_utc().checked_add_offset(offset).is_some() { offset } else { FixedOffset::east_opt(0).unwrap() };
                let text = time.with_timezone(&offset).to_rfc3339_opts(format, use_z);
                let expected = text.parse::<DateTime<FixedOffset>>().map(|t| t.with_timezone(&Utc));
                prop_assert_eq!(parse_timestamp(&text), expected, "{}", text);
                prop_assert_eq!(parse_timestamp_micros(&text), expected.ok().map(|t| t.timestamp_micros()), "{}", text);
            }

            /// Text shaped like a timestamp, valid or not: the direct reading never disagrees with
            /// chrono.
            #[test]
            fn timestamp_like_text_is_read_as_chrono_reads_it(
                text in "[0-9+-]{0,2}[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
            ) {
                let expected = text.parse::<DateTime<FixedOffset>>().map(|t| t.with_timezone(&Utc));
                prop_assert_eq!(parse_timestamp(&text), expected, "{}", text);
                prop_assert_eq!(parse_timestamp_micros(&text), expected.ok().map(|t| t.timestamp_micros()), "{}", text);
            }

            /// The plain-decimal shortcut agrees with `Money::parse` whenever it answers.
            #[test]
            fn plain_decimals_are_read_as_money_reads_them(text in "[-+]?[0-9]{0,21}(\\.[0-9]{0,11})?") {
                if let Some(units) = parse_plain_decimal(text.as_bytes()) {
                    prop_assert_eq!(Some(units), Money::parse(&text).ok().map(Money::to_scaled_i128), "{}", text);
                }
            }
        }
    }
}
