//! The in-memory head of the store: series by label set, an inverted index (label=value →
//! series ids) for matchers, and per series a list of closed Gorilla chunks plus the open one.
//! Sans-IO: samples and time come in as arguments. Chunks close at 120 samples (as in
//! Prometheus) so queries decode little; retention drops whole chunks and empty series.

use super::idhash::IdMap;
use std::collections::{BTreeMap, BTreeSet};

use super::chunk::{AppendError, ChunkIter, ChunkWriter};
use super::varint::put_uvarint;

/// A label set, sorted by name, including `__name__`.
pub type Labels = Vec<(String, String)>;

/// A series as a checkpoint stores it: id, labels, every sample.
pub type SeriesDump = (u64, Labels, Vec<(i64, f64)>);

/// Samples per chunk before it is closed.
pub const CHUNK_SAMPLES: usize = 120;

/// How a label is matched (PromQL's `=`, `!=`, `=~`, `!~`; regexes are fully anchored).
#[derive(Debug, Clone)]
pub enum MatchOp {
    Eq(String),
    Neq(String),
    Re(regex::Regex),
    Nre(regex::Regex),
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
}

impl Matcher {
    pub fn eq(name: &str, value: &str) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Eq(value.into()),
        }
    }

    /// A regex matcher, anchored at both ends as PromQL does.
    pub fn re(name: &str, pattern: &str, negate: bool) -> Result<Self, regex::Error> {
        let r = regex::Regex::new(&format!("^(?:{pattern})$"))?;
        Ok(Matcher {
            name: name.into(),
            op: if negate {
                MatchOp::Nre(r)
            } else {
                MatchOp::Re(r)
            },
        })
    }

    /// Does `value` (empty when the label is absent) match?
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Eq(v) => value == v,
            MatchOp::Neq(v) => value != v,
            MatchOp::Re(r) => r.is_match(value),
            MatchOp::Nre(r) => !r.is_match(value),
        }
    }
}

/// A label set packed into one allocation (`len ‖ name ‖ len ‖ value` per label, LEB128
/// lengths): a few dozen bytes per series instead of a vector of string pairs, since label
/// sets are most of the head's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packed(Box<[u8]>);

impl Packed {
    fn new(labels: &Labels) -> Packed {
        let mut b = Vec::with_capacity(labels.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (n, v) in labels {
            put_uvarint(&mut b, n.len() as u64);
            b.extend_from_slice(n.as_bytes());
            put_uvarint(&mut b, v.len() as u64);
            b.extend_from_slice(v.as_bytes());
        }
        Packed(b.into_boxed_slice())
    }

    fn pairs(&self) -> PackedIter<'_> {
        PackedIter { b: &self.0, pos: 0 }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn unpack(&self) -> Labels {
        self.pairs()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

struct PackedIter<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> PackedIter<'a> {
    fn next_str(&mut self) -> Option<&'a str> {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            len |= ((byte & 0x7f) as usize) << shift;
            if byte < 0x80 {
                break;
            }
            shift += 7;
        }
        let s = self.b.get(self.pos..self.pos + len)?;
        self.pos += len;
        // Packed only from valid strings.
        std::str::from_utf8(s).ok()
    }
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.next_str()?, self.next_str()?))
    }
}

/// The ids in both sorted lists.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn hash_labels(labels: &Packed) -> u64 {
    use std::hash::BuildHasher;
    // A fixed-key hasher: ids only need to be stable within one process.
    std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(&labels.0)
}

/// Why a series or sample was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadError {
    #[error("the series limit of {0} is reached")]
    TooManySeries(usize),
    #[error("a series needs a __name__ label")]
    NoName,
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error("unknown series id {0}")]
    UnknownSeries(u64),
    #[error("sample at {0} is older than the retention")]
    TooOld(i64),
    #[error("sample at {0} is more than 10 minutes in the future: check the clock")]
    TooNew(i64),
}

struct Closed {
    min_t: i64,
    max_t: i64,
    bytes: Vec<u8>,
}

struct Series {
    labels: Packed,
    /// Closed chunks not yet written to a segment.
    closed: Vec<Closed>,
    open: ChunkWriter,
    /// The newest sample ever accepted (in memory or on disk): appends must follow it
    /// (`i64::MIN` before the first).
    last_t: i64,
}

/// A closed chunk leaving the head for the segment ring: series, min_t, max_t, bytes.
pub type FlushChunk = (u64, i64, i64, Vec<u8>);

/// The head: every live series.
#[derive(Default)]
pub struct Head {
    series: IdMap<Series>,
    /// Label-set hash → the series with that hash (the labels themselves live once, in
    /// `series`; collisions are told apart by comparing them).
    by_hash: IdMap<u64>,
    /// Further series whose label-set hash another series has already (rare).
    collisions: IdMap<Vec<u64>>,
    /// Bytes of closed chunks waiting for the ring (kept here: the ingest path asks often).
    closed_total: usize,
    /// Label name → value → ids of the series with it, sorted (a vector: 8 bytes an id,
    /// where a B-tree set spends a node on every value).
    postings: BTreeMap<String, BTreeMap<String, Vec<u64>>>,
    next_id: u64,
    max_series: usize,
    /// ANDed into label-set hashes: all ones, except in the test that forces collisions.
    hash_mask: u64,
}

impl Head {
    pub fn new(max_series: usize) -> Self {
        Head {
            max_series,
            hash_mask: u64::MAX,
            ..Default::default()
        }
    }

    fn hash(&self, labels: &Packed) -> u64 {
        hash_labels(labels) & self.hash_mask
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The id of a label set, creating the series when new.
    pub fn series_id(&mut self, mut labels: Labels) -> Result<u64, HeadError> {
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        if let Some(id) = self.find(&labels) {
            return Ok(id);
        }
        if !labels.iter().any(|(n, v)| n == "__name__" && !v.is_empty()) {
            return Err(HeadError::NoName);
        }
        if self.series.len() >= self.max_series {
            return Err(HeadError::TooManySeries(self.max_series));
        }
        self.next_id += 1;
        let id = self.next_id;
        self.insert(id, labels);
        Ok(id)
    }

    /// The id of an existing series with exactly these (sorted) labels.
    fn find(&self, labels: &Labels) -> Option<u64> {
        let packed = Packed::new(labels);
        let h = self.hash(&packed);
        let first = self.by_hash.get(&h)?;
        std::iter::once(first)
            .chain(self.collisions.get(&h).into_iter().flatten())
            .copied()
            .find(|id| self.series.get(id).is_some_and(|s| s.labels == packed))
    }

    /// Adds a new series under `id` to the maps and the index.
    fn insert(&mut self, id: u64, labels: Labels) {
        for (n, v) in &labels {
            let ids = self
                .postings
                .entry(n.clone())
                .or_default()
                .entry(v.clone())
                .or_default();
            // Ids grow, so this is mostly a push at the end.
            if let Err(pos) = ids.binary_search(&id) {
                ids.insert(pos, id);
            }
        }
        let labels = Packed::new(&labels);
        let h = self.hash(&labels);
        match self.by_hash.entry(h) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.entry(h).or_default().push(id)
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
        }
        self.series.insert(
            id,
            Series {
                labels,
                closed: Vec::new(),
                open: ChunkWriter::new(),
                last_t: i64::MIN,
            },
        );
    }

    /// Recreates a series with a known id (replay of the write-ahead log).
    pub fn restore_series(&mut self, id: u64, mut labels: Labels) {
        labels.sort();
        if self.series.contains_key(&id) {
            return;
        }
        self.insert(id, labels);
        self.next_id = self.next_id.max(id);
    }

    /// Every series with all its samples (for checkpoints), by id.
    pub fn dump(&self) -> Vec<SeriesDump> {
        let mut ids: Vec<u64> = self.series.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| {
                let s = &self.series[&id];
                let mut samples: Vec<(i64, f64)> = s
                    .closed
                    .iter()
                    .flat_map(|c| super::compact::decode(&c.bytes))
                    .collect();
                samples.extend(ChunkIter::new(&s.open.bytes()));
                (id, s.labels.unpack(), samples)
            })
            .collect()
    }

    /// Appends a sample to a series; out-of-order and duplicate samples are refused.
    pub fn append(&mut self, id: u64, t: i64, v: f64) -> Result<(), HeadError> {
        let s = self
            .series
            .get_mut(&id)
            .ok_or(HeadError::UnknownSeries(id))?;
        if s.last_t != i64::MIN && t <= s.last_t {
            let last = s.last_t;
            return Err(if t == last {
                AppendError::Duplicate { t }
            } else {
                AppendError::OutOfOrder { t, last }
            }
            .into());
        }
        if s.open.len() >= CHUNK_SAMPLES {
            self.closed_total += Self::close_open(s);
        }
        s.open.push(t, v)?;
        s.last_t = t;
        Ok(())
    }

    /// Closes the open chunk of `s`; returns the bytes it takes now.
    fn close_open(s: &mut Series) -> usize {
        let Some(last) = s.open.last_timestamp() else {
            return 0;
        };
        let full = std::mem::take(&mut s.open);
        // Closed chunks take the compact encoding: smaller in memory and on disk.
        let samples: Vec<(i64, f64)> = ChunkIter::new(&full.bytes()).collect();
        let bytes = super::compact::encode(&samples);
        let n = bytes.len();
        s.closed.push(Closed {
            min_t: full.first_timestamp().unwrap_or(last),
            max_t: last,
            bytes,
        });
        n
    }

    /// Sets the newest time a series already has on disk (start-up): older or equal samples
    /// replayed from the log are then refused as duplicates.
    pub fn set_last(&mut self, id: u64, t: i64) {
        if let Some(s) = self.series.get_mut(&id) {
            s.last_t = s.last_t.max(t);
        }
    }

    /// Closes the open chunks whose newest sample is older than `t` (series gone quiet), so
    /// they can leave memory. Returns how many were closed.
    pub fn close_idle(&mut self, t: i64) -> usize {
        let mut n = 0;
        for s in self.series.values_mut() {
            if s.open.last_timestamp().is_some_and(|l| l < t) {
                self.closed_total += Self::close_open(s);
                n += 1;
            }
        }
        n
    }

    /// Takes every closed chunk out of the head (to be written to the segment ring).
    pub fn take_closed(&mut self) -> Vec<FlushChunk> {
        let mut out = Vec::new();
        let mut ids: Vec<u64> = self
            .series
            .iter()
            .filter(|(_, s)| !s.closed.is_empty())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(s) = self.series.get_mut(&id) {
                for c in std::mem::take(&mut s.closed) {
                    out.push((id, c.min_t, c.max_t, c.bytes));
                }
            }
        }
        self.closed_total = 0;
        out
    }

    /// Puts chunks back that could not be written (they stay in memory and in the log).
    pub fn restore_closed(&mut self, chunks: Vec<FlushChunk>) {
        for (id, min_t, max_t, bytes) in chunks {
            if let Some(s) = self.series.get_mut(&id) {
                self.closed_total += bytes.len();
                s.closed.push(Closed {
                    min_t,
                    max_t,
                    bytes,
                });
                s.closed.sort_by_key(|c| c.min_t);
            }
        }
    }

    /// Bytes of closed chunks waiting for the ring.
    pub fn closed_bytes(&self) -> usize {
        self.closed_total
    }

    /// Series holding no samples in memory.
    pub fn empty_series(&self) -> Vec<u64> {
        self.series
            .iter()
            .filter(|(_, s)| s.closed.is_empty() && s.open.is_empty())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Samples of one series held in memory in `[mint, maxt]`, appended to `out`.
    pub fn samples_into(&self, id: u64, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        let Some(s) = self.series.get(&id) else {
            return;
        };
        for c in s
            .closed
            .iter()
            .filter(|c| c.max_t >= mint && c.min_t <= maxt)
        {
            super::compact::decode_into(&c.bytes, mint, maxt, out);
        }
        if s.open.first_timestamp().is_some_and(|f| f <= maxt) {
            out.extend(ChunkIter::new(&s.open.bytes()).filter(|(t, _)| (mint..=maxt).contains(t)));
        }
    }

    /// The labels of a series.
    pub fn labels_of(&self, id: u64) -> Option<Labels> {
        self.series.get(&id).map(|s| s.labels.unpack())
    }

    /// Ids of the series matching every matcher (PromQL semantics: a matcher that matches
    /// the empty string also selects series without that label).
    pub fn select_ids(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut ids: Option<Vec<u64>> = None;
        // Narrow with equality matchers on present values first: they use the index.
        for m in matchers {
            if let MatchOp::Eq(v) = &m.op
                && !v.is_empty()
            {
                let set: &[u64] = self
                    .postings
                    .get(&m.name)
                    .and_then(|vals| vals.get(v))
                    .map_or(&[], Vec::as_slice);
                ids = Some(match ids {
                    None => set.to_vec(),
                    Some(cur) => intersect(&cur, set),
                });
            }
        }
        let candidates: Vec<u64> = match ids {
            Some(s) => s,
            None => {
                let mut v: Vec<u64> = self.series.keys().copied().collect();
                v.sort_unstable();
                v
            }
        };
        candidates
            .into_iter()
            .filter(|id| {
                let s = &self.series[id];
                matchers.iter().all(|m| {
                    let value = s.labels.get(&m.name).unwrap_or("");
                    m.matches(value)
                })
            })
            .collect()
    }

    /// Matching series with their samples in memory in `[mint, maxt]`, by series id.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        self.select_ids(matchers)
            .into_iter()
            .map(|id| {
                let mut samples = Vec::new();
                self.samples_into(id, mint, maxt, &mut samples);
                (self.series[&id].labels.unpack(), samples)
            })
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Every label name, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.postings.keys().cloned().collect()
    }

    /// Every value of a label, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.postings
            .get(name)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops chunks in memory whose samples are all older than `t`, and series left without
    /// samples in memory for which `keep` is false (no data on disk either). Returns how many
    /// series were dropped.
    pub fn drop_before(&mut self, t: i64, keep: impl Fn(u64) -> bool) -> usize {
        let mut gone = Vec::new();
        for (id, s) in self.series.iter_mut() {
            let total = &mut self.closed_total;
            s.closed.retain(|c| {
                let keep = c.max_t >= t;
                if !keep {
                    *total -= c.bytes.len();
                }
                keep
            });
            if s.open.last_timestamp().is_some_and(|l| l < t) {
                s.open = ChunkWriter::new();
            }
            if s.closed.is_empty() && s.open.is_empty() && !keep(*id) {
                gone.push(*id);
            }
        }
        gone.sort_unstable();
        // Postings lists are cut once each, however many of their series go.
        let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
        for id in &gone {
            if let Some(s) = self.series.remove(id) {
                let h = hash_labels(&s.labels) & self.hash_mask;
                if self.by_hash.get(&h) == Some(id) {
                    match self.collisions.get_mut(&h).and_then(Vec::pop) {
                        Some(next) => {
                            self.by_hash.insert(h, next);
                        }
                        None => {
                            self.by_hash.remove(&h);
                        }
                    }
                } else if let Some(more) = self.collisions.get_mut(&h) {
                    more.retain(|i| i != id);
                }
                if self.collisions.get(&h).is_some_and(Vec::is_empty) {
                    self.collisions.remove(&h);
                }
                touched.extend(
                    s.labels
                        .pairs()
                        .map(|(n, v)| (n.to_string(), v.to_string())),
                );
            }
        }
        for (n, v) in touched {
            if let Some(vals) = self.postings.get_mut(&n) {
                if let Some(ids) = vals.get_mut(&v) {
                    ids.retain(|i| gone.binary_search(i).is_err());
                    if ids.is_empty() {
                        vals.remove(&v);
                    }
                }
                if vals.is_empty() {
                    self.postings.remove(&n);
                }
            }
        }
        gone.len()
    }

    /// Bytes of chunk data held (closed chunks plus open chunks).
    pub fn chunk_bytes(&self) -> usize {
        self.series
            .values()
            .map(|s| {
                let open = if s.open.is_empty() { 0 } else { s.open.size() };
                s.closed.iter().map(|c| c.bytes.len()).sum::<usize>() + open
            })
            .sum()
    }
}

impl super::Source for Head {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
        Head::select(self, matchers, mint, maxt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn head() -> Head {
        let mut h = Head::new(1000);
        let series = [
            &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")][..],
            &[("__name__", "up"), ("job", "node"), ("instance", "b:9100")],
            &[("__name__", "up"), ("job", "prom"), ("instance", "c:9090")],
            &[("__name__", "node_load1"), ("instance", "a:9100")],
        ];
        for (i, l) in series.iter().enumerate() {
            let id = h.series_id(labels(l)).unwrap();
            for t in 0..300 {
                h.append(id, t * 15_000, (i * 1000 + t as usize) as f64)
                    .unwrap();
            }
        }
        h
    }

    fn names(h: &Head, ms: &[Matcher]) -> Vec<String> {
        h.select(ms, 0, i64::MAX)
            .into_iter()
            .map(|(l, _)| {
                l.iter()
                    .map(|(a, b)| format!("{a}={b}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[test]
    fn matchers_select_like_promql() {
        let h = head();
        let re = |n: &str, p: &str| Matcher::re(n, p, false).unwrap();
        let nre = |n: &str, p: &str| Matcher::re(n, p, true).unwrap();
        let cases: Vec<(Vec<Matcher>, usize)> = vec![
            (vec![Matcher::eq("__name__", "up")], 3),
            (
                vec![Matcher::eq("__name__", "up"), Matcher::eq("job", "node")],
                2,
            ),
            (
                vec![Matcher::eq("__name__", "up"), re("instance", "a.*")],
                1,
            ),
            (vec![Matcher::eq("__name__", "up"), re("instance", "a")], 0),
            (vec![Matcher::eq("__name__", "up"), nre("job", "node|x")], 1),
            (
                vec![Matcher {
                    name: "job".into(),
                    op: MatchOp::Neq("node".into()),
                }],
                2,
            ),
            (vec![Matcher::eq("job", "")], 1),
            (
                vec![re("__name__", ".+"), Matcher::eq("instance", "a:9100")],
                2,
            ),
        ];
        for (ms, want) in cases {
            assert_eq!(
                h.select(&ms, 0, i64::MAX).len(),
                want,
                "{ms:?} -> {:?}",
                names(&h, &ms)
            );
        }
    }

    #[test]
    fn chunks_close_and_ranges_cut() {
        let h = head();
        let (_, samples) = h
            .select(&[Matcher::eq("instance", "b:9100")], 0, i64::MAX)
            .remove(0);
        assert_eq!(samples.len(), 300);
        assert!(samples.windows(2).all(|w| w[1].0 - w[0].0 == 15_000));
        let (_, part) = h
            .select(
                &[Matcher::eq("instance", "b:9100")],
                15_000 * 100,
                15_000 * 130,
            )
            .remove(0);
        assert_eq!(part.len(), 31, "a range across a chunk boundary");
        assert_eq!(part[0], (1_500_000, 1100.0));
        // 300 samples = two closed chunks of 120 plus 60 open; about 1–2 bytes a sample.
        assert!(h.chunk_bytes() < 4 * 300 * 3, "{}", h.chunk_bytes());
    }

    #[test]
    fn refusals_and_limits() {
        let mut h = Head::new(2);
        let a = h.series_id(labels(&[("__name__", "a")])).unwrap();
        assert_eq!(h.series_id(labels(&[("x", "1")])), Err(HeadError::NoName));
        h.series_id(labels(&[("__name__", "b")])).unwrap();
        assert_eq!(
            h.series_id(labels(&[("__name__", "c")])),
            Err(HeadError::TooManySeries(2))
        );
        assert_eq!(
            h.series_id(labels(&[("__name__", "a")])).unwrap(),
            a,
            "same set, same id"
        );
        for t in 0..CHUNK_SAMPLES as i64 {
            h.append(a, t, 1.0).unwrap();
        }
        // At the chunk boundary too, the past is refused.
        assert!(matches!(
            h.append(a, 5, 1.0),
            Err(HeadError::Append(AppendError::OutOfOrder { .. }))
        ));
        assert!(matches!(
            h.append(a, 119, 1.0),
            Err(HeadError::Append(AppendError::Duplicate { .. }))
        ));
        h.append(a, 120, 1.0).unwrap();
        assert!(matches!(
            h.append(a, 119, 1.0),
            Err(HeadError::Append(AppendError::OutOfOrder { .. }))
        ));
    }

    #[test]
    fn colliding_label_set_hashes_are_told_apart() {
        // Four hash values for 40 series: every lookup walks a collision list.
        let mut h = Head::new(100);
        h.hash_mask = 3;
        let l = |i: usize| labels(&[("__name__", "m"), ("i", &i.to_string())]);
        let ids: Vec<u64> = (0..40).map(|i| h.series_id(l(i)).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(h.series_id(l(i)).unwrap(), *id);
            if i % 2 == 0 {
                h.append(*id, 1, 1.0).unwrap();
            }
        }
        // The odd ones have no samples and go; the even ones are still found.
        assert_eq!(h.drop_before(0, |_| false), 20);
        for (i, id) in ids.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(h.series_id(l(i)).unwrap(), *id, "series {i}");
            }
        }
        assert_eq!(h.series_count(), 20);
        assert_eq!(h.select_ids(&[Matcher::eq("__name__", "m")]).len(), 20);
        let again = h.series_id(l(1)).unwrap();
        assert!(
            again > ids[39],
            "a dropped series comes back under a new id"
        );
    }

    #[test]
    fn retention_drops_chunks_and_empty_series() {
        let mut h = head();
        let gone_series = h.drop_before(15_000 * 1000, |_| false);
        assert_eq!(gone_series, 4);
        assert_eq!(h.series_count(), 0);
        assert!(h.label_names().is_empty(), "the index forgets them too");
        let mut h = head();
        h.drop_before(15_000 * 200, |_| false);
        let (_, s) = h
            .select(&[Matcher::eq("instance", "c:9090")], 0, i64::MAX)
            .remove(0);
        assert_eq!(s.len(), 60 + 120, "the first closed chunk (0..120) is gone");
        assert_eq!(h.label_values("job"), vec!["node", "prom"]);
        // The running total of closed bytes follows every change.
        let sum = |h: &Head| -> usize {
            h.series
                .values()
                .flat_map(|s| &s.closed)
                .map(|c| c.bytes.len())
                .sum()
        };
        assert!(h.closed_bytes() > 0);
        assert_eq!(h.closed_bytes(), sum(&h));
        h.close_idle(i64::MAX);
        assert_eq!(h.closed_bytes(), sum(&h));
        let taken = h.take_closed();
        assert_eq!((h.closed_bytes(), sum(&h)), (0, 0));
        h.restore_closed(taken);
        assert_eq!(h.closed_bytes(), sum(&h));
    }
}
