//! The embedded time-series engine (issue 4). Built bottom-up as sans-IO cores with a thin
//! file layer: `bits` (bit streams), `varint`, `chunk` (Gorilla XOR chunks for open
//! chunks), `compact` (closed chunks), `exposition` (the Prometheus/OpenMetrics text
//! parser), `head` (series, inverted index, matchers, chunk lists, retention), `idhash`,
//! `wal` (the checksummed write-ahead log), `segment` (the ring of segment files and their
//! indexes), `tier` (1 m / 1 h downsampling), `db` (all of them as one store) and `promql`
//! (the query engine). `tsdb` never does network I/O.

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

/// Threads a large query may split its work among: the cores this process may use (up to
/// four), looked up once.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

/// Prometheus' staleness marker: a NaN with this exact bit pattern marks a series as gone.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is the staleness marker (compared bit for bit: other NaNs are values).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}
