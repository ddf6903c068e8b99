//! `enrich`: the service prefetch-batch exists for, with real parts.
//!
//! Messages arrive from a [`source`] (a synthetic stream with bursts and gaps, or a Kafka topic),
//! are batched so that each batch costs one query to the [`db`] (SQLite or PostgreSQL), and the
//! enriched records go to a [`sink`] (JSON lines or a Kafka topic). [`pipeline`] runs that loop
//! with prefetch on (the next batch fills while this one is in the database) or off
//! ([`sequential`]: fill, then process), and [`report`] prints what each run measured.
//!
//! The binaries are `enrich` (the service, see [`app`]) and `quickstart` (the shortest program).

pub mod app;
pub mod batching;
pub mod db;
pub mod kafka;
pub mod metrics;
pub mod mock;
pub mod pipeline;
pub mod report;
pub mod retry;
pub mod sequential;
pub mod sink;
pub mod source;
