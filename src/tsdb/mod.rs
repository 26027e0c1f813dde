//! The embedded time-series engine (issue 4). Built bottom-up as sans-IO cores with a thin
//! file layer: `bits` (bit streams), `chunk` (Gorilla XOR chunks), `exposition` (the
//! Prometheus/OpenMetrics text parser), `head` (series, inverted index, matchers, chunk
//! lists, retention), `wal` (the checksummed write-ahead log). The ring of segment files,
//! downsampling, ingestion from agents and scrapes, and the PromQL evaluator come next.
//! `tsdb` never does network I/O.

pub mod bits;
pub mod chunk;
pub mod compact;
pub mod db;
pub mod exposition;
pub mod head;
pub mod idhash;
pub mod promql;
pub mod segment;
pub mod tier;
pub mod varint;
pub mod wal;

/// Where a query reads samples from: the head today, the head plus on-disk segments and
/// downsampled tiers tomorrow. The PromQL engine sees only this.
pub trait Source {
    /// Matching series (labels sorted by name, including `__name__`) with their samples in
    /// `[mint, maxt]` in time order; series without samples in the range are left out.
    fn select(
        &self,
        matchers: &[head::Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<(head::Labels, Vec<(i64, f64)>)>;
}

/// Prometheus' staleness marker: a NaN with this exact bit pattern marks a series as gone.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is the staleness marker (compared bit for bit: other NaNs are values).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}
