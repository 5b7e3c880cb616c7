//! The clickstream event contract, defined once and used by every component.
//!
//! * [`tracker`] — what clients send: [`tracker::TrackerEvent`], its validation rules and limits.
//! * [`event`] — what the pipeline stores: [`event::Event`], one flat row per event after the
//!   collector has enriched it (server time, skew correction, truncated IP, parsed user agent).
//! * [`schema`] — the single field table that documents every stored column and from which the
//!   Arrow schema (and so the Parquet and warehouse schemas) is generated.
//! * [`columns`] — stored events straight into Arrow columns, borrowing from the queue message:
//!   the batcher's hot path.
//! * [`failed`] — the typed record of an event the collector rejected; rejected events are never
//!   dropped, they go to the dead-letter stream as [`failed::FailedEvent`].
//! * [`money`] — decimal amounts: money is never a binary float in storage.
//! * `strategies` (tests, and the `proptest` feature) — generators of valid and adversarial
//!   events for property tests.

pub mod columns;
pub mod event;
pub mod failed;
pub mod money;
pub mod page_url;
mod queue_json;
pub mod schema;
#[cfg(any(test, feature = "proptest"))]
pub mod strategies;
pub mod tracker;

pub use event::{Event, EventType, Platform};
pub use failed::{FailedEvent, FieldError};
pub use money::Money;
pub use tracker::{Batch, EventId, Limits, TrackerEvent};

/// Version of the stored event layout. Bumped when a column is added; consumers may read older
/// versions because columns are only ever added, never renamed or retyped.
pub const SCHEMA_VERSION: u32 = 1;
