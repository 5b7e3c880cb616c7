//! Events ↔ Parquet: grouping by hour, de-duplication by `event_id`, and the writer settings.
//!
//! Files use the Arrow schema generated from the contract (`event_model::schema`), zstd
//! compression, and row groups of at most [`ParquetSettings::row_group_rows`] rows; each file's
//! rows are sorted by `event_time`. The `event_model` schema version is stored in the file's
//! key-value metadata.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use event_model::Event;
use event_model::columns::{ColumnBuilders, EVENT_TIME, StoredRow};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

/// Writer settings.
#[derive(Clone, Copy, Debug)]
pub struct ParquetSettings {
    /// zstd level (1–22).
    pub zstd_level: i32,
    /// Most rows in one row group.
    pub row_group_rows: usize,
}

impl Default for ParquetSettings {
    /// zstd level 1: on `make bench`'s events, level 3 makes files 2% smaller and takes about 8%
    /// longer end to end. Row groups of 32Ki rows: the Parquet writer holds a row group in memory
    /// until it closes, about 1 KB per event for this schema, so an open hour stays near 32 MB.
    fn default() -> Self {
        Self { zstd_level: 1, row_group_rows: 32 * 1024 }
    }
}

/// Why Parquet could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// Arrow failed (schema mismatch, bad column).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The Parquet library failed (corrupt file, I/O).
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

const HOUR_MICROS: i64 = 3_600_000_000;

/// The UTC hour an event belongs to (the hour of its corrected `event_time`).
pub fn hour_of(event: &Event) -> DateTime<Utc> {
    event.event_time.duration_trunc(TimeDelta::hours(1)).unwrap_or(event.event_time)
}

/// Rows buffered per hour before they are sorted by `event_time` and handed to the Parquet
/// encoder; bounds memory to this many decoded rows per open hour.
const CHUNK_ROWS: usize = 16 * 1024;

/// The event ids already in one file. Canonical (lower-case, hyphenated) UUIDs — what the
/// collector writes — are kept as 128-bit numbers; any other id as its text.
#[derive(Default)]
struct SeenIds {
    uuids: foldhash::HashSet<u128>,
    other: foldhash::HashSet<Box<str>>,
}

impl SeenIds {
    fn with_capacity(ids: usize) -> Self {
        Self { uuids: foldhash::HashSet::with_capacity_and_hasher(ids, Default::default()), other: Default::default() }
    }

    /// False when `id` was seen before.
    fn insert(&mut self, id: &str) -> bool {
        let canonical = id.len() == 36 && !id.bytes().any(|b| b.is_ascii_uppercase());
        match uuid::Uuid::try_parse(id) {
            Ok(uuid) if canonical => self.uuids.insert(uuid.as_u128()),
            _ => self.other.insert(id.into()),
        }
    }
}

struct HourFile {
    writer: ArrowWriter<Vec<u8>>,
    pending: ColumnBuilders,
    seen: SeenIds,
    rows: usize,
}

/// Streams events into one Parquet file per hour of `event_time`, removing duplicate
/// `event_id`s within each file (the first copy in queue order is kept). Memory per open hour
/// stays bounded by [`CHUNK_ROWS`] decoded rows, the open row group and 16 bytes per event id,
/// however many events pass through; rows are sorted by `event_time` within each chunk.
pub struct HourlyParquetWriter {
    settings: ParquetSettings,
    hours: BTreeMap<i64, HourFile>,
    duplicates: usize,
}

/// One finished hour file.
#[derive(Debug)]
pub struct HourFileBytes {
    /// The hour.
    pub hour: DateTime<Utc>,
    /// Rows in the file.
    pub rows: usize,
    /// The Parquet file.
    pub data: Bytes,
}

impl HourlyParquetWriter {
    /// A writer with `settings`.
    pub fn new(settings: ParquetSettings) -> Self {
        Self { settings, hours: BTreeMap::new(), duplicates: 0 }
    }

    /// Adds one event.
    pub fn push(&mut self, event: &Event) -> Result<(), ParquetError> {
        self.push_row(&StoredRow::from_event(event))
    }

    /// Adds one decoded queue message ([`StoredRow::parse`]).
    pub fn push_row(&mut self, row: &StoredRow<'_>) -> Result<(), ParquetError> {
        let hour = row.event_time_micros().div_euclid(HOUR_MICROS);
        let file = match self.hours.entry(hour) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(HourFile {
                writer: ArrowWriter::try_new(
                    Vec::new(),
                    event_model::schema::arrow_schema(),
                    Some(properties(self.settings)),
                )?,
                pending: ColumnBuilders::with_capacity(1024),
                seen: SeenIds::with_capacity(CHUNK_ROWS),
                rows: 0,
            }),
        };
        if !file.seen.insert(row.event_id()) {
            self.duplicates += 1;
            return Ok(());
        }
        file.pending.append(row);
        if file.pending.len() >= CHUNK_ROWS {
            flush_chunk(file)?;
        }
        Ok(())
    }

    /// Duplicates removed so far.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Finishes every hour's file.
    pub fn finish(self) -> Result<(Vec<HourFileBytes>, usize), ParquetError> {
        let mut files = Vec::with_capacity(self.hours.len());
        for (hour, mut file) in self.hours {
            flush_chunk(&mut file)?;
            let data = file.writer.into_inner()?;
            let hour = DateTime::from_timestamp_micros(hour * HOUR_MICROS)
                .ok_or_else(|| arrow::error::ArrowError::ComputeError(format!("hour {hour} is out of range")))?;
            files.push(HourFileBytes { hour, rows: file.rows, data: Bytes::from(data) });
        }
        Ok((files, self.duplicates))
    }
}

fn flush_chunk(file: &mut HourFile) -> Result<(), ParquetError> {
    if file.pending.is_empty() {
        return Ok(());
    }
    let batch = sorted_by_event_time(file.pending.finish()?)?;
    file.writer.write(&batch)?;
    file.rows += batch.num_rows();
    Ok(())
}

/// `batch` in `event_time` order, keeping queue order among equal times; untouched when already
/// in order (the usual case: the queue is roughly in time order).
fn sorted_by_event_time(batch: RecordBatch) -> Result<RecordBatch, ParquetError> {
    let times = batch.column(EVENT_TIME).as_primitive::<TimestampMicrosecondType>().values();
    if times.windows(2).all(|pair| pair[0] <= pair[1]) {
        return Ok(batch);
    }
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by_key(|&row| times[row as usize]);
    Ok(take_record_batch(&batch, &arrow::array::UInt32Array::from(order))?)
}

/// Columns written without a dictionary: unique per event (the id and the µs timestamps) or
/// nearly so (visitor, session and order ids, full URLs, free text). Building a dictionary for
/// them costs a hash-table insert per value and is abandoned once it outgrows its page anyway;
/// zstd still compresses what repeats. Every other column is dictionary-encoded.
pub const PLAIN_COLUMNS: &[&str] = &[
    "event_id",
    "event_time",
    "client_event_time",
    "sent_at",
    "received_at",
    "anonymous_id",
    "user_id",
    "session_id",
    "page_url",
    "page_referrer",
    "order_id",
    "search_query",
    "properties",
];

fn properties(settings: ParquetSettings) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(settings.zstd_level).unwrap_or_default()))
        .set_max_row_group_row_count(Some(settings.row_group_rows))
        // Values go to the column encoders 8Ki at a time (1Ki by default): fewer page-size
        // checks per value; pages still close near the 1 MiB limit.
        .set_write_batch_size(8192)
        .set_created_by(format!("clickstream-batcher {}", env!("CARGO_PKG_VERSION")));
    for column in PLAIN_COLUMNS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    // Statistics only for timestamps, numbers and booleans. Rows are in time order, so in every
    // row group a text column's min and max span nearly its whole domain (every event type,
    // category, id…) and can never prune one; computing them cost a string compare per value,
    // 10% of the batcher core's time. event_time's statistics are what readers prune hours with.
    for spec in event_model::schema::FIELDS {
        if spec.column_type == event_model::schema::ColumnType::String {
            builder = builder.set_column_statistics_enabled(ColumnPath::from(spec.name), EnabledStatistics::None);
        }
    }
    builder.build()
}

/// Encodes record batches (with the contract's schema) as one Parquet file.
pub fn write_batches(batches: &[RecordBatch], settings: ParquetSettings) -> Result<Bytes, ParquetError> {
    let mut buffer = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut buffer, event_model::schema::arrow_schema(), Some(properties(settings)))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// Encodes events (already deduplicated and sorted) as one Parquet file.
pub fn write_events(events: &[Event], settings: ParquetSettings) -> Result<Bytes, ParquetError> {
    let mut batches = Vec::new();
    for chunk in events.chunks(settings.row_group_rows.max(1)) {
        batches.push(event_model::schema::to_record_batch(chunk)?);
    }
    write_batches(&batches, settings)
}

/// Reads every record batch of a Parquet file.
pub fn read_batches(data: Bytes) -> Result<Vec<RecordBatch>, ParquetError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)?.with_batch_size(64 * 1024).build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// A Parquet file in memory with its footer (and page indexes, when it has them) parsed.
pub struct ParsedFile {
    data: Bytes,
    metadata: Arc<ParquetMetaData>,
}

impl ParsedFile {
    /// Parses the footer of `data`.
    pub fn parse(data: Bytes) -> Result<Self, ParquetError> {
        let metadata =
            ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional).parse_and_finish(&data)?;
        Ok(Self { data, metadata: Arc::new(metadata) })
    }

    /// Row groups in the file.
    pub fn row_groups(&self) -> usize {
        self.metadata.num_row_groups()
    }

    /// Rows in row group `index`.
    pub fn row_group_rows(&self, index: usize) -> usize {
        self.metadata.row_group(index).num_rows().max(0) as usize
    }

    /// The hour (µs since the epoch, floored) every row of row group `index` falls in, from
    /// its `event_time` statistics; `None` when they are missing or span more than one hour.
    pub fn row_group_hour(&self, index: usize) -> Option<i64> {
        let group = self.metadata.row_group(index);
        let column = group.columns().iter().find(|c| c.column_path().string() == "event_time")?;
        let Some(Statistics::Int64(stats)) = column.statistics() else { return None };
        let (min, max) = (stats.min_opt()?.div_euclid(HOUR_MICROS), stats.max_opt()?.div_euclid(HOUR_MICROS));
        (min == max).then_some(min * HOUR_MICROS)
    }

    /// `event_id` and `received_at` (µs) of every row of row group `index`, decoding only
    /// those two columns.
    pub fn ids_and_arrivals(&self, index: usize) -> Result<Vec<(String, i64)>, ParquetError> {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(self.data.clone(), options)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["event_id", "received_at"]);
        let reader = builder.with_projection(mask).with_row_groups(vec![index]).with_batch_size(64 * 1024).build()?;
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch?;
            let (ids, received) = (column(&batch, "event_id")?, column(&batch, "received_at")?);
            let (ids, received) = (ids.as_string::<i32>(), received.as_primitive::<TimestampMicrosecondType>());
            rows.extend((0..batch.num_rows()).map(|row| (ids.value(row).to_owned(), received.value(row))));
        }
        Ok(rows)
    }

    /// Decodes the row groups `groups`.
    pub fn read_row_groups(&self, groups: Vec<usize>) -> Result<Vec<RecordBatch>, ParquetError> {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(self.data.clone(), options)?
            .with_row_groups(groups)
            .with_batch_size(64 * 1024)
            .build()?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    }
}

/// Builds one Parquet file from row groups of other files copied as they are — their pages
/// are not decoded or re-compressed — and from batches encoded anew, in the order given.
/// Copying is what keeps compaction cheap and its memory bounded: a day of hour files
/// becomes one file at the cost of moving its bytes.
pub struct FileAppender {
    writer: SerializedFileWriter<Vec<u8>>,
    schema: parquet::schema::types::TypePtr,
    settings: ParquetSettings,
    rows: usize,
}

impl FileAppender {
    /// An empty file with the contract's schema and the key-value metadata [`write_batches`]
    /// writes (the Arrow schema among it).
    pub fn new(settings: ParquetSettings) -> Result<Self, ParquetError> {
        // The schema and metadata an ArrowWriter writes, taken from an empty file it wrote,
        // so copied and newly encoded row groups agree with every other file of the lake.
        let template = ParsedFile::parse(write_batches(&[], settings)?)?;
        let file_metadata = template.metadata.file_metadata();
        let schema = file_metadata.schema_descr().root_schema_ptr();
        let properties = WriterProperties::builder()
            .set_key_value_metadata(file_metadata.key_value_metadata().cloned())
            .set_created_by(format!("clickstream-batcher {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(Vec::new(), schema.clone(), Arc::new(properties))?;
        Ok(Self { writer, schema, settings, rows: 0 })
    }

    /// Whether row groups of `file` can be copied: it has exactly this file's schema.
    pub fn can_copy(&self, file: &ParsedFile) -> bool {
        *file.metadata.file_metadata().schema_descr().root_schema() == *self.schema
    }

    /// Copies row groups `groups` of `file`.
    pub fn copy_row_groups(&mut self, file: &ParsedFile, groups: &[usize]) -> Result<(), ParquetError> {
        if !self.can_copy(file) {
            return Err(ParquetError::Parquet(parquet::errors::ParquetError::General(
                "cannot copy row groups of a file with another schema".into(),
            )));
        }
        let page_index = file.metadata.page_index();
        for &index in groups {
            let group = file.metadata.row_group(index);
            let mut out = self.writer.next_row_group()?;
            for (column_index, column) in group.columns().iter().enumerate() {
                let column_index_meta = page_index.and_then(|p| p.column_index(index, column_index)).cloned();
                let offset_index_meta = page_index.and_then(|p| p.offset_index(index, column_index)).cloned();
                out.append_column(
                    &file.data,
                    ColumnCloseResult {
                        bytes_written: column.compressed_size().max(0) as u64,
                        rows_written: group.num_rows().max(0) as u64,
                        metadata: column.clone(),
                        bloom_filter: None,
                        column_index: column_index_meta,
                        offset_index: offset_index_meta,
                    },
                )?;
            }
            out.close()?;
            self.rows += group.num_rows().max(0) as usize;
        }
        Ok(())
    }

    /// Encodes `batches` as new row groups.
    pub fn write(&mut self, batches: &[RecordBatch]) -> Result<(), ParquetError> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(());
        }
        let encoded = ParsedFile::parse(write_batches(batches, self.settings)?)?;
        self.copy_row_groups(&encoded, &(0..encoded.row_groups()).collect::<Vec<_>>())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The finished file.
    pub fn finish(self) -> Result<Bytes, ParquetError> {
        Ok(Bytes::from(self.writer.into_inner()?))
    }
}

/// The column `name` of `batch`, or a schema error naming it.
pub fn column(batch: &RecordBatch, name: &str) -> Result<arrow::array::ArrayRef, arrow::error::ArrowError> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column {name}")))
}

/// Concatenates batches, removes duplicate `event_id`s (keeping the earliest `received_at`) and
/// sorts by `event_time`. Returns the merged batch and the duplicates removed.
pub fn merge_batches(batches: &[RecordBatch]) -> Result<(RecordBatch, usize), ParquetError> {
    let schema = event_model::schema::arrow_schema();
    let merged = concat_batches(&schema, batches)?;
    if merged.num_rows() == 0 {
        return Ok((merged, 0));
    }
    let ids = column(&merged, "event_id")?;
    let received = column(&merged, "received_at")?;
    let ids = ids.as_string::<i32>();
    let received = received.as_primitive::<TimestampMicrosecondType>();
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(merged.num_rows());
    for row in 0..merged.num_rows() {
        let id = ids.value(row);
        match first.get(id) {
            Some(&kept) if received.value(kept) <= received.value(row) => {}
            _ => {
                first.insert(id, row);
            }
        }
    }
    let mut keep = vec![false; merged.num_rows()];
    for &row in first.values() {
        keep[row] = true;
    }
    let duplicates = merged.num_rows() - first.len();
    let filtered = filter_record_batch(&merged, &arrow::array::BooleanArray::from(keep))?;
    let order = lexsort_to_indices(
        &[
            SortColumn {
                values: Arc::clone(
                    filtered
                        .column_by_name("event_time")
                        .ok_or_else(|| arrow::error::ArrowError::SchemaError("no event_time".into()))?,
                ),
                options: None,
            },
            SortColumn {
                values: Arc::clone(
                    filtered
                        .column_by_name("event_id")
                        .ok_or_else(|| arrow::error::ArrowError::SchemaError("no event_id".into()))?,
                ),
                options: None,
            },
        ],
        None,
    )?;
    Ok((take_record_batch(&filtered, &order)?, duplicates))
}

/// Rows in a Parquet file according to its footer.
pub fn row_count(data: &Bytes) -> Result<usize, ParquetError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone())?;
    Ok(builder.metadata().file_metadata().num_rows() as usize)
}

/// The `event_id` of every row, for tests and checks.
pub fn event_ids(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| {
            let ids = batch.column_by_name("event_id").map(|c| c.as_string::<i32>().clone());
            ids.map(|ids| (0..ids.len()).map(|i| ids.value(i).to_owned()).collect::<Vec<_>>()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, time: &str, received: &str) -> Event {
        let mut event = Event::new(
            id,
            event_model::EventType::PageView,
            time.parse().unwrap(),
            received.parse().unwrap(),
            format!("received {received}"),
        );
        event.price = Some(event_model::Money::parse("1.5").unwrap());
        event
    }

    #[test]
    fn events_are_written_per_hour_and_deduplicated_keeping_the_first_copy() {
        let events = vec![
            event("b", "2026-11-24T10:59:59Z", "2026-11-24T11:00:05Z"),
            event("a", "2026-11-24T10:00:00Z", "2026-11-24T10:00:01Z"),
            event("a", "2026-11-24T10:00:00Z", "2026-11-24T10:00:09Z"),
            event("c", "2026-11-24T11:00:00Z", "2026-11-24T11:00:00Z"),
        ];
        let mut writer = HourlyParquetWriter::new(ParquetSettings::default());
        for event in events {
            writer.push(&event).unwrap();
        }
        let (files, duplicates) = writer.finish().unwrap();
        assert_eq!(duplicates, 1);
        let hours: Vec<String> = files.iter().map(|f| f.hour.to_rfc3339()).collect();
        assert_eq!(hours, ["2026-11-24T10:00:00+00:00", "2026-11-24T11:00:00+00:00"]);
        let ten = read_batches(files[0].data.clone()).unwrap();
        assert_eq!(event_ids(&ten), ["a", "b"], "sorted by event_time");
        let source = ten[0].column_by_name("source_id").unwrap().as_string::<i32>().value(0).to_owned();
        assert_eq!(source, "received 2026-11-24T10:00:01Z");
        assert_eq!(files[1].rows, 1);
    }

    #[test]
    fn parquet_round_trips_and_merging_deduplicates() {
        let first =
            write_events(&[event("x", "2026-11-24T10:00:02Z", "2026-11-24T10:00:03Z")], ParquetSettings::default())
                .unwrap();
        let second = write_events(
            &[
                event("x", "2026-11-24T10:00:02Z", "2026-11-24T10:00:01Z"),
                event("y", "2026-11-24T10:00:01Z", "2026-11-24T10:00:01Z"),
            ],
            ParquetSettings::default(),
        )
        .unwrap();
        assert_eq!(row_count(&second).unwrap(), 2);
        let mut batches = read_batches(first).unwrap();
        batches.extend(read_batches(second).unwrap());
        let (merged, duplicates) = merge_batches(&batches).unwrap();
        assert_eq!(duplicates, 1);
        assert_eq!(event_ids(std::slice::from_ref(&merged)), ["y", "x"]);
        let sources = merged.column_by_name("source_id").unwrap().as_string::<i32>().value(1).to_owned();
        assert_eq!(sources, "received 2026-11-24T10:00:01Z", "the earliest received copy is kept");
    }

    /// Events → hourly Parquet → read back, over generated events; `make fuzz` runs it longer.
    mod proptests {
        use std::borrow::Cow;

        use arrow::array::BooleanArray;
        use arrow::datatypes::{Decimal128Type, Int64Type};
        use event_model::columns::Value;
        use event_model::schema::{ColumnType, FIELDS};
        use event_model::strategies;
        use proptest::prelude::*;

        use super::*;

        /// Row `row` of `batch`, every column read back through Arrow's arrays.
        fn read_row(batch: &RecordBatch, row: usize) -> Vec<Value<'_>> {
            FIELDS
                .iter()
                .enumerate()
                .map(|(index, spec)| {
                    let column = batch.column(index);
                    if column.is_null(row) {
                        return Value::Null;
                    }
                    match spec.column_type {
                        ColumnType::String => Value::Text(Cow::Borrowed(column.as_string::<i32>().value(row))),
                        ColumnType::Bool => {
                            Value::Bool(column.as_any().downcast_ref::<BooleanArray>().unwrap().value(row))
                        }
                        ColumnType::Timestamp => {
                            Value::Timestamp(column.as_primitive::<TimestampMicrosecondType>().value(row))
                        }
                        ColumnType::Decimal => Value::Decimal(column.as_primitive::<Decimal128Type>().value(row)),
                        ColumnType::Int64 => Value::Int(column.as_primitive::<Int64Type>().value(row)),
                    }
                })
                .collect()
        }

        /// Events with ids drawn from a few, so some repeat and are removed.
        fn events() -> impl Strategy<Value = Vec<Event>> {
            prop::collection::vec((strategies::event(), 0u8..12, any::<bool>()), 1..16).prop_map(|drawn| {
                drawn
                    .into_iter()
                    .map(|(mut event, id, same_hour)| {
                        event.event_id = format!("id-{id}");
                        if same_hour {
                            // Many events in one hour, so a file holds more than one row.
                            event.event_time = DateTime::from_timestamp(1_764_000_000 + i64::from(id) * 97, 0).unwrap();
                        }
                        event
                    })
                    .collect()
            })
        }

        proptest! {
            // Each case writes and reads up to 16 events through Parquet files; `make fuzz` runs
            // many more.
            #![proptest_config(strategies::config(12))]

            /// One file per hour of event_time, each holding the first copy of every event id
            /// in that hour, in event_time order (queue order among equal times), every column
            /// read back as it went in: text and nulls exactly, money to the 10⁻⁹ unit,
            /// timestamps to the microsecond, properties' JSON text unchanged.
            #[test]
            fn hourly_parquet_reads_back_as_the_events_went_in(events in events(), row_group_rows in 1usize..8) {
                let settings = ParquetSettings { zstd_level: 1, row_group_rows };
                let mut writer = HourlyParquetWriter::new(settings);
                for event in &events {
                    writer.push(event).unwrap();
                }
                let (files, duplicates) = writer.finish().unwrap();
                // The reference: group by hour, keep each id's first copy, stable sort by time.
                let mut expected: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
                for event in &events {
                    let hour = event.event_time.timestamp_micros().div_euclid(HOUR_MICROS);
                    let rows = expected.entry(hour).or_default();
                    if !rows.iter().any(|kept| kept.event_id == event.event_id) {
                        rows.push(event);
                    }
                }
                let kept: usize = expected.values().map(Vec::len).sum();
                prop_assert_eq!(duplicates, events.len() - kept);
                prop_assert_eq!(files.len(), expected.len());
                for (file, (hour, mut rows)) in files.iter().zip(expected) {
                    rows.sort_by_key(|event| event.event_time.timestamp_micros());
                    prop_assert_eq!(file.hour.timestamp_micros(), hour * HOUR_MICROS);
                    prop_assert_eq!(file.rows, rows.len());
                    prop_assert_eq!(row_count(&file.data).unwrap(), rows.len());
                    let batches = read_batches(file.data.clone()).unwrap();
                    let read: Vec<Vec<Value<'_>>> =
                        batches.iter().flat_map(|batch| (0..batch.num_rows()).map(move |row| read_row(batch, row))).collect();
                    prop_assert_eq!(read.len(), rows.len());
                    for (got, event) in read.iter().zip(&rows) {
                        let want = StoredRow::from_event(event);
                        for (index, spec) in FIELDS.iter().enumerate() {
                            prop_assert_eq!(&got[index], &want.values()[index], "column {}", spec.name);
                        }
                        // Against the event itself, not only its columns.
                        let price = event.price.map_or(Value::Null, |m| Value::Decimal(m.to_scaled_i128()));
                        prop_assert_eq!(&got[event_model::columns::column_index("price")], &price);
                        prop_assert_eq!(&got[EVENT_TIME], &Value::Timestamp(event.event_time.timestamp_micros()));
                        let properties = event.properties.as_deref().map_or(Value::Null, |p| Value::Text(Cow::Borrowed(p)));
                        prop_assert_eq!(&got[event_model::columns::column_index("properties")], &properties);
                    }
                }
            }

            /// The compaction path: events → Parquet through the schema's record batches → read
            /// back → merged, every column as it went in.
            #[test]
            fn written_events_read_back_and_merge_as_they_went_in(events in events()) {
                let mut unique: Vec<Event> = Vec::new();
                for event in events {
                    if !unique.iter().any(|kept| kept.event_id == event.event_id) {
                        unique.push(event);
                    }
                }
                let data = write_events(&unique, ParquetSettings { zstd_level: 1, row_group_rows: 3 }).unwrap();
                let batches = read_batches(data).unwrap();
                let read: Vec<Vec<Value<'_>>> =
                    batches.iter().flat_map(|batch| (0..batch.num_rows()).map(move |row| read_row(batch, row))).collect();
                prop_assert_eq!(read.len(), unique.len());
                for (got, event) in read.iter().zip(&unique) {
                    let want = StoredRow::from_event(event);
                    prop_assert_eq!(&got[..], &want.values()[..]);
                }
                let (merged, duplicates) = merge_batches(&batches).unwrap();
                prop_assert_eq!(duplicates, 0);
                prop_assert_eq!(merged.num_rows(), unique.len());
            }
        }
    }
}
