//! The ring of segment files: closed chunks leave the head for append-only segment files
//! of a fixed maximum size (`segment_bytes`); the oldest segment is deleted when the ring
//! (segment files and their indexes) outgrows `max_bytes` or when all its samples are past
//! retention. The newest segment is
//! the active one; a full one is sealed: synced, and its chunk index written beside it as
//! `NNNNNNNNNNNN.idx`, sorted by series, which queries search on disk.
//!
//! Segment file: magic `OMPSEG2\n`, then records `len` (LEB128 payload bytes) ‖ `crc: u32
//! LE` (CRC-32 of the payload) ‖ payload = `series` (LEB128) ‖ the chunk's bytes (`compact`
//! encoding; its time range is in the index, and recomputed from the chunk by a scan). Small
//! headers matter: a chunk of 120 node samples is often under 100 bytes. A torn tail of the
//! active segment (a crash during a flush) is cut on open; the head's write-ahead log still
//! holds those samples.
//! Index file: magic `OMPIDX3\n`, entries sorted by (series, min_t) in blocks of
//! [`BLOCK`]; per entry, LEB128: the series minus the previous entry's (0 for a block's
//! first), `min_t - base_t`, `max_t - min_t`, the offset (zig-zag, relative to where the
//! previous entry's chunk ended: chunks of consecutive series usually lie side by side) and
//! `len` — about 10 bytes where fixed fields took 32, and with ~100-byte chunks that was a
//! quarter of the disk. Then the block table (per block its first series `u64` and offset
//! `u32`), then `base_t: i64`, `blocks: u32`, `entries: u32`, the table's offset `u32` and
//! the CRC-32 of everything before it (all LE). A lookup binary-searches the table with
//! `pread` and decodes one or two blocks. A missing, damaged or older (`OMPIDX2`) index is
//! rebuilt from its segment.
//!
//! Memory is bounded by configuration, not by retention: the ring keeps per segment a file
//! handle and its time range, the active segment's chunk list (bounded by `segment_bytes`),
//! and per series on disk its segment count and newest time (16 bytes, for start-up and for
//! dropping series whose data is gone). Sealed indexes stay on disk (binary search with
//! `pread`, served from the page cache when hot).

use super::varint::{get_uvarint, put_uvarint, unzigzag, zigzag};
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const SEG_MAGIC: &[u8; 8] = b"OMPSEG2\n";
const IDX_MAGIC: &[u8; 8] = b"OMPIDX3\n";
/// Index entries per block.
const BLOCK: usize = 32;
/// A block table row: first series and offset.
const ROW: usize = 12;
/// `base_t`, blocks, entries, table offset, CRC.
const FOOTER: usize = 24;
/// What an index entry is assumed to take until its segment is sealed (they average ~10
/// bytes; the disk budget should rather count too much than too little).
const ENTRY_ESTIMATE: u64 = 16;
/// A damaged length must not make the reader allocate gigabytes.
const MAX_RECORD: u32 = 16 * 1024 * 1024;

/// The time range of a chunk's bytes (None: not a chunk of this ring's kind).
pub type Bounds = fn(&[u8]) -> Option<(i64, i64)>;

/// Bounds of a `compact` chunk (the raw ring's kind).
pub fn compact_bounds(b: &[u8]) -> Option<(i64, i64)> {
    let s = super::compact::decode(b);
    Some((s.first()?.0, s.last()?.0))
}

/// Where one chunk lives in its segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskChunk {
    pub min_t: i64,
    pub max_t: i64,
    /// Offset of the chunk's bytes (not the record) in the segment file.
    pub offset: u32,
    pub len: u32,
}

struct Segment {
    seq: u64,
    file: File,
    size: u64,
    min_t: i64,
    max_t: i64,
    /// The active segment's chunks by series; sealed segments have their index on disk.
    active: Option<HashMap<u64, Vec<DiskChunk>>>,
    /// A sealed segment's index file.
    index: Option<SealedIndex>,
    /// Chunks in this segment.
    chunks: u64,
}

impl Segment {
    fn is_empty(&self) -> bool {
        self.max_t == i64::MIN
    }
}

/// What opening the ring found.
#[derive(Debug, Default, PartialEq)]
pub struct RingReport {
    pub segments: usize,
    pub chunks: usize,
    pub bytes: u64,
    /// Bytes cut off the active segment's torn tail.
    pub truncated: u64,
    /// Sealed segments whose index was missing or damaged and was rebuilt by a scan.
    pub rebuilt_indexes: usize,
}

/// The ring.
pub struct Ring {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    /// Per series on disk: segments holding it, newest sample time.
    present: HashMap<u64, (u32, i64)>,
    chunks: usize,
    segment_bytes: u64,
    max_bytes: u64,
    next_seq: u64,
    /// Segments sealed since the last `take_sealed` (downsampling reads them).
    sealed: Vec<u64>,
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:012}.seg"))
}

fn idx_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:012}.idx"))
}

/// Decodes the records of a segment file's bytes; returns the chunks and the length of the
/// good prefix (a torn or corrupt tail ends the scan).
fn scan(bytes: &[u8], bounds: Bounds) -> (Vec<(u64, DiskChunk)>, usize) {
    let mut out = Vec::new();
    if bytes.len() < 8 || &bytes[..8] != SEG_MAGIC {
        return (out, 0);
    }
    let mut pos = 8;
    while pos < bytes.len() {
        let mut i = pos;
        let Some(len) = get_uvarint(bytes, &mut i) else {
            break;
        };
        let Some(crc) = bytes.get(i..i + 4) else {
            break;
        };
        let crc = u32::from_le_bytes(crc.try_into().unwrap_or_default());
        let start = i + 4;
        let end = start.saturating_add(len as usize);
        if len > MAX_RECORD as u64
            || end > bytes.len()
            || crc32fast::hash(&bytes[start..end]) != crc
        {
            break;
        }
        let p = &bytes[start..end];
        let mut j = 0;
        let Some(series) = get_uvarint(p, &mut j) else {
            break;
        };
        let Some((min_t, max_t)) = bounds(&p[j..]) else {
            break;
        };
        out.push((
            series,
            DiskChunk {
                min_t,
                max_t,
                offset: (start + j) as u32,
                len: (p.len() - j) as u32,
            },
        ));
        pos = end;
    }
    (out, pos)
}

/// An index file on disk and what its footer says.
struct SealedIndex {
    file: File,
    /// Bytes of the file.
    bytes: u64,
    base_t: i64,
    blocks: u32,
    /// Offset of the block table.
    table: u32,
}

/// An index file's bytes for `chunks` (sorted here by series and time).
fn encode_index(mut chunks: Vec<(u64, DiskChunk)>) -> Vec<u8> {
    chunks.sort_by_key(|(s, c)| (*s, c.min_t));
    let base_t = chunks.iter().map(|(_, c)| c.min_t).min().unwrap_or(0);
    let mut b = Vec::with_capacity(16 + chunks.len() * 12);
    b.extend_from_slice(IDX_MAGIC);
    let mut table = Vec::with_capacity(chunks.len() / BLOCK + 1);
    for block in chunks.chunks(BLOCK) {
        table.push((block[0].0, b.len() as u32));
        let (mut series, mut end) = (block[0].0, 0u64);
        for (s, c) in block {
            put_uvarint(&mut b, s - series);
            put_uvarint(&mut b, c.min_t.wrapping_sub(base_t) as u64);
            put_uvarint(&mut b, c.max_t.wrapping_sub(c.min_t) as u64);
            put_uvarint(&mut b, zigzag(c.offset as i64 - end as i64));
            put_uvarint(&mut b, c.len as u64);
            series = *s;
            end = c.offset as u64 + c.len as u64;
        }
    }
    let table_at = b.len() as u32;
    for (s, o) in &table {
        b.extend_from_slice(&s.to_le_bytes());
        b.extend_from_slice(&o.to_le_bytes());
    }
    b.extend_from_slice(&base_t.to_le_bytes());
    b.extend_from_slice(&(table.len() as u32).to_le_bytes());
    b.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    b.extend_from_slice(&table_at.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// An index's footer: `base_t`, blocks, entries, table offset (None: not an index of this
/// format or cut short).
fn footer(b: &[u8]) -> Option<(i64, u32, u32, u32)> {
    if b.len() < IDX_MAGIC.len() + FOOTER || &b[..8] != IDX_MAGIC {
        return None;
    }
    let f = &b[b.len() - FOOTER..];
    let u32_at = |i: usize| u32::from_le_bytes(f[i..i + 4].try_into().unwrap_or_default());
    let base_t = i64::from_le_bytes(f[..8].try_into().ok()?);
    let (blocks, entries, table) = (u32_at(8), u32_at(12), u32_at(16));
    let table_end = table as u64 + blocks as u64 * ROW as u64;
    (table as usize >= IDX_MAGIC.len() && table_end == (b.len() - FOOTER) as u64)
        .then_some((base_t, blocks, entries, table))
}

/// Decodes the entries of one block (`b` holds the block and maybe more; `n` entries at
/// most), appending them to `out`.
fn decode_block(
    b: &[u8],
    first: u64,
    base_t: i64,
    n: usize,
    out: &mut Vec<(u64, DiskChunk)>,
) -> Option<()> {
    let (mut pos, mut series, mut end) = (0, first, 0i64);
    for _ in 0..n {
        series = series.checked_add(get_uvarint(b, &mut pos)?)?;
        let min_t = base_t.wrapping_add(get_uvarint(b, &mut pos)? as i64);
        let max_t = min_t.wrapping_add(get_uvarint(b, &mut pos)? as i64);
        let offset = end.checked_add(unzigzag(get_uvarint(b, &mut pos)?))?;
        let len = get_uvarint(b, &mut pos)?;
        let c = DiskChunk {
            min_t,
            max_t,
            offset: u32::try_from(offset).ok()?,
            len: u32::try_from(len).ok()?,
        };
        end = offset + len as i64;
        out.push((series, c));
    }
    Some(())
}

/// The entries of an index file, if it is intact.
fn decode_index(b: &[u8]) -> Option<Vec<(u64, DiskChunk)>> {
    let (base_t, blocks, entries, table) = footer(b)?;
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut out = Vec::with_capacity(entries as usize);
    for i in 0..blocks as usize {
        let row = &b[table as usize + i * ROW..][..ROW];
        let first = u64::from_le_bytes(row[..8].try_into().ok()?);
        let at = u32::from_le_bytes(row[8..].try_into().ok()?) as usize;
        let n = (entries as usize - out.len().min(entries as usize)).min(BLOCK);
        decode_block(b.get(at..table as usize)?, first, base_t, n, &mut out)?;
    }
    (out.len() == entries as usize).then_some(out)
}

/// What the index of an active segment with `chunks` chunks is counted as.
fn active_index_estimate(chunks: u64) -> u64 {
    if chunks == 0 {
        return 0;
    }
    (IDX_MAGIC.len() + FOOTER) as u64
        + chunks * ENTRY_ESTIMATE
        + chunks.div_ceil(BLOCK as u64) * ROW as u64
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes an index file atomically (temp file, sync, rename).
fn write_index(
    dir: &Path,
    seq: u64,
    chunks: Vec<(u64, DiskChunk)>,
) -> std::io::Result<SealedIndex> {
    let path = idx_path(dir, seq);
    let tmp = path.with_extension("idx.tmp");
    let bytes = encode_index(chunks);
    std::fs::write(&tmp, &bytes)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    sealed_index(File::open(&path)?, &bytes)
}

/// A sealed index from its file and its bytes.
fn sealed_index(file: File, bytes: &[u8]) -> std::io::Result<SealedIndex> {
    let (base_t, blocks, _, table) = footer(bytes)
        .ok_or_else(|| std::io::Error::other("a metrics index file has no valid footer"))?;
    Ok(SealedIndex {
        file,
        bytes: bytes.len() as u64,
        base_t,
        blocks,
        table,
    })
}

impl Ring {
    /// Opens (creating) the ring in `dir`: sealed segments through their index files (a
    /// missing or damaged index is rebuilt by scanning), the active one by a scan that cuts
    /// a torn tail.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        max_bytes: u64,
    ) -> std::io::Result<(Ring, RingReport)> {
        Self::open_with(dir, segment_bytes, max_bytes, compact_bounds)
    }

    /// Opens a ring whose chunks are of the kind `bounds` understands.
    pub fn open_with(
        dir: &Path,
        segment_bytes: u64,
        max_bytes: u64,
        bounds: Bounds,
    ) -> std::io::Result<(Ring, RingReport)> {
        std::fs::create_dir_all(dir)?;
        let mut seqs: Vec<u64> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut ring = Ring {
            dir: dir.to_path_buf(),
            segments: VecDeque::new(),
            present: HashMap::new(),
            chunks: 0,
            segment_bytes: segment_bytes.clamp(4096, u32::MAX as u64 / 2),
            max_bytes: max_bytes.max(segment_bytes),
            next_seq: seqs.last().map_or(1, |s| s + 1),
            sealed: Vec::new(),
        };
        let mut report = RingReport::default();
        let last = seqs.last().copied();
        for seq in seqs {
            let path = seg_path(dir, seq);
            let file = OpenOptions::new().read(true).append(true).open(&path)?;
            let active = Some(seq) == last;
            let indexed = if active {
                None
            } else {
                std::fs::read(idx_path(dir, seq))
                    .ok()
                    .and_then(|b| Some((decode_index(&b)?, b)))
            };
            let mut index_bytes = None;
            let chunks = match indexed {
                Some((c, b)) => {
                    index_bytes = Some(b);
                    c
                }
                None => {
                    let bytes = std::fs::read(&path)?;
                    let (chunks, good) = scan(&bytes, bounds);
                    if active && good < bytes.len() {
                        report.truncated += (bytes.len() - good) as u64;
                        if good == 0 {
                            file.set_len(0)?;
                            (&file).write_all(SEG_MAGIC)?;
                        } else {
                            file.set_len(good as u64)?;
                        }
                        file.sync_all()?;
                    }
                    if !active {
                        report.rebuilt_indexes += 1;
                    }
                    chunks
                }
            };
            let mut seg = Segment {
                seq,
                size: file.metadata()?.len(),
                file,
                min_t: i64::MAX,
                max_t: i64::MIN,
                active: None,
                index: None,
                chunks: 0,
            };
            ring.account(&mut seg, &chunks);
            report.chunks += chunks.len();
            if active {
                let mut map: HashMap<u64, Vec<DiskChunk>> = HashMap::new();
                for (s, c) in chunks {
                    map.entry(s).or_default().push(c);
                }
                seg.active = Some(map);
            } else {
                let idx = match index_bytes {
                    Some(b) => sealed_index(File::open(idx_path(dir, seq))?, &b)?,
                    None => write_index(dir, seq, chunks)?,
                };
                seg.index = Some(idx);
            }
            report.bytes += seg.size;
            ring.segments.push_back(seg);
        }
        report.segments = ring.segments.len();
        Ok((ring, report))
    }

    /// Counts a segment's chunks in the per-series summary and its time range.
    fn account(&mut self, seg: &mut Segment, chunks: &[(u64, DiskChunk)]) {
        let mut seen: Vec<u64> = Vec::new();
        for (s, c) in chunks {
            seg.min_t = seg.min_t.min(c.min_t);
            seg.max_t = seg.max_t.max(c.max_t);
            let e = self.present.entry(*s).or_insert((0, i64::MIN));
            e.1 = e.1.max(c.max_t);
            seen.push(*s);
        }
        seen.sort_unstable();
        seen.dedup();
        for s in seen {
            if let Some(e) = self.present.get_mut(&s) {
                e.0 += 1;
            }
        }
        self.chunks += chunks.len();
        seg.chunks += chunks.len() as u64;
    }

    /// Appends closed chunks `(series, min_t, max_t, bytes)` and syncs them; the oldest
    /// segments are deleted if the ring grows past `max_bytes`. Returns the deleted count.
    pub fn write(&mut self, chunks: &[(u64, i64, i64, Vec<u8>)]) -> std::io::Result<usize> {
        if chunks.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::new();
        let mut placed = Vec::new();
        for (series, min_t, max_t, bytes) in chunks {
            if self
                .segments
                .back()
                .is_none_or(|s| s.size + buf.len() as u64 >= self.segment_bytes)
            {
                self.flush_buf(&mut buf, &mut placed)?;
                self.roll()?;
            }
            let base = self.segments.back().map_or(0, |s| s.size) + buf.len() as u64;
            let mut p = Vec::with_capacity(bytes.len() + 10);
            put_uvarint(&mut p, *series);
            let head = p.len();
            p.extend_from_slice(bytes);
            let before = buf.len();
            put_uvarint(&mut buf, p.len() as u64);
            buf.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
            let prefix = (buf.len() - before) as u64;
            buf.extend_from_slice(&p);
            placed.push((
                *series,
                DiskChunk {
                    min_t: *min_t,
                    max_t: *max_t,
                    offset: (base + prefix + head as u64) as u32,
                    len: bytes.len() as u32,
                },
            ));
        }
        self.flush_buf(&mut buf, &mut placed)?;
        self.enforce_bytes()
    }

    /// Writes `buf` to the active segment, syncs, and indexes `placed`.
    fn flush_buf(
        &mut self,
        buf: &mut Vec<u8>,
        placed: &mut Vec<(u64, DiskChunk)>,
    ) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(mut seg) = self.segments.pop_back() else {
            return Err(std::io::Error::other("no active segment"));
        };
        if let Err(e) = (&seg.file)
            .write_all(buf)
            .and_then(|_| seg.file.sync_data())
        {
            // A partial write (full disk) must not stay in front of later records.
            let _ = seg.file.set_len(seg.size);
            self.segments.push_back(seg);
            return Err(e);
        }
        seg.size += buf.len() as u64;
        let chunks = std::mem::take(placed);
        self.account(&mut seg, &chunks);
        let map = seg.active.get_or_insert_with(HashMap::new);
        for (s, c) in chunks {
            map.entry(s).or_default().push(c);
        }
        self.segments.push_back(seg);
        buf.clear();
        Ok(())
    }

    /// Seals the active segment (its index goes to disk) and starts a new one.
    fn roll(&mut self) -> std::io::Result<()> {
        if let Some(seg) = self.segments.back_mut()
            && let Some(map) = seg.active.take()
        {
            let chunks: Vec<(u64, DiskChunk)> = map
                .into_iter()
                .flat_map(|(s, v)| v.into_iter().map(move |c| (s, c)))
                .collect();
            seg.index = Some(write_index(&self.dir, seg.seq, chunks)?);
            self.sealed.push(seg.seq);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = seg_path(&self.dir, seq);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(SEG_MAGIC)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        self.segments.push_back(Segment {
            seq,
            file,
            size: SEG_MAGIC.len() as u64,
            min_t: i64::MAX,
            max_t: i64::MIN,
            active: Some(HashMap::new()),
            index: None,
            chunks: 0,
        });
        Ok(())
    }

    fn enforce_bytes(&mut self) -> std::io::Result<usize> {
        let mut n = 0;
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            self.drop_oldest()?;
            n += 1;
        }
        Ok(n)
    }

    /// The chunks of a segment, from memory or its index file.
    fn all_chunks(seg: &Segment) -> Vec<(u64, DiskChunk)> {
        if let Some(map) = &seg.active {
            return map
                .iter()
                .flat_map(|(s, v)| v.iter().map(move |c| (*s, *c)))
                .collect();
        }
        let Some(idx) = &seg.index else {
            return Vec::new();
        };
        let mut b = vec![0u8; idx.bytes as usize];
        if idx.file.read_exact_at(&mut b, 0).is_err() {
            return Vec::new();
        }
        decode_index(&b).unwrap_or_default()
    }

    fn drop_oldest(&mut self) -> std::io::Result<()> {
        let Some(seg) = self.segments.pop_front() else {
            return Ok(());
        };
        let chunks = Self::all_chunks(&seg);
        self.chunks = self.chunks.saturating_sub(chunks.len());
        let mut seen: Vec<u64> = chunks.into_iter().map(|(s, _)| s).collect();
        seen.sort_unstable();
        seen.dedup();
        for s in seen {
            if let Some(e) = self.present.get_mut(&s) {
                e.0 = e.0.saturating_sub(1);
                if e.0 == 0 {
                    self.present.remove(&s);
                }
            }
        }
        let _ = std::fs::remove_file(idx_path(&self.dir, seg.seq));
        std::fs::remove_file(seg_path(&self.dir, seg.seq))?;
        Ok(())
    }

    /// Seals the active segment now if it holds anything (its index goes to disk, so
    /// `bytes` is exact rather than estimated for it).
    pub fn seal(&mut self) -> std::io::Result<()> {
        if self.segments.back().is_some_and(|s| !s.is_empty()) {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment if every sample in it is older than `t` (so its data can be
    /// downsampled before `drop_before` deletes it).
    pub fn seal_expired(&mut self, t: i64) -> std::io::Result<()> {
        if self
            .segments
            .back()
            .is_some_and(|s| !s.is_empty() && s.max_t < t)
        {
            self.roll()?;
        }
        Ok(())
    }

    /// Deletes segments whose every sample is older than `t` (an active one is sealed
    /// first, a new one takes its place). Returns how many.
    pub fn drop_before(&mut self, t: i64) -> std::io::Result<usize> {
        let mut n = 0;
        while self
            .segments
            .front()
            .is_some_and(|s| !s.is_empty() && s.max_t < t)
        {
            if self.segments.len() == 1 {
                self.roll()?;
            }
            self.drop_oldest()?;
            n += 1;
        }
        Ok(n)
    }

    /// The chunks of `series` in a sealed segment: a binary search of its index's block
    /// table, then the blocks that hold the series.
    fn sealed_chunks(idx: &SealedIndex, series: u64) -> Vec<DiskChunk> {
        let row = |i: u32| -> Option<(u64, u32)> {
            let mut b = [0u8; ROW];
            idx.file
                .read_exact_at(&mut b, idx.table as u64 + i as u64 * ROW as u64)
                .ok()?;
            Some((
                u64::from_le_bytes(b[..8].try_into().ok()?),
                u32::from_le_bytes(b[8..].try_into().ok()?),
            ))
        };
        // The first block whose first series is ≥ `series`; the series may begin in the
        // block before it.
        let (mut lo, mut hi) = (0u32, idx.blocks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match row(mid) {
                Some((first, _)) if first < series => lo = mid + 1,
                Some(_) => hi = mid,
                None => return Vec::new(),
            }
        }
        let mut out = Vec::new();
        let mut entries = Vec::with_capacity(BLOCK);
        let mut buf = Vec::new();
        let start = lo.saturating_sub(1);
        let mut cur = (start < idx.blocks).then(|| row(start)).flatten();
        for i in start..idx.blocks {
            let Some((first, at)) = cur else {
                break;
            };
            // Each row is read once: a block ends where the next begins, the last one
            // where the table begins.
            let next = (i + 1 < idx.blocks).then(|| row(i + 1)).flatten();
            let end = next.map_or(idx.table, |(_, next_at)| next_at);
            cur = next;
            // A block holds 32 entries of five LEB128 numbers: anything longer is damage,
            // which must not make the reader allocate.
            if first > series || end < at || (end - at) as usize > BLOCK * 5 * 10 {
                break;
            }
            buf.resize((end - at) as usize, 0);
            if idx.file.read_exact_at(&mut buf, at as u64).is_err() {
                break;
            }
            entries.clear();
            // The last block may hold fewer entries: decoding stops at its end.
            let _ = decode_block(&buf, first, idx.base_t, BLOCK, &mut entries);
            out.extend(
                entries
                    .iter()
                    .filter(|(s, _)| *s == series)
                    .map(|(_, c)| *c),
            );
            if entries.last().is_some_and(|(s, _)| *s > series) {
                break;
            }
        }
        out
    }

    /// Samples of `series` in `[mint, maxt]` from disk, in time order (compact chunks).
    pub fn read(&self, series: u64, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        for bytes in self.read_raw(series, mint, maxt) {
            super::compact::decode_into(&bytes, mint, maxt, out);
        }
    }

    /// The bytes of the chunks of `series` overlapping `[mint, maxt]`, in time order.
    pub fn read_raw(&self, series: u64, mint: i64, maxt: i64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if !self.present.contains_key(&series) {
            return out;
        }
        for seg in self
            .segments
            .iter()
            .filter(|s| !s.is_empty() && s.max_t >= mint && s.min_t <= maxt)
        {
            let chunks = match (&seg.active, &seg.index) {
                (Some(map), _) => map.get(&series).cloned().unwrap_or_default(),
                (None, Some(idx)) => Self::sealed_chunks(idx, series),
                _ => Vec::new(),
            };
            for c in chunks.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt) {
                let mut buf = vec![0u8; c.len as usize];
                if seg.file.read_exact_at(&mut buf, c.offset as u64).is_err() {
                    tracing::error!(segment = seg.seq, "A metrics segment could not be read.");
                    continue;
                }
                out.push(buf);
            }
        }
        out
    }

    /// Segments sealed since the last call (oldest first).
    pub fn take_sealed(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.sealed)
    }

    /// Every chunk of segment `seq` by series (series order), as bytes; empty when the
    /// segment is gone.
    pub fn segment_chunks(&self, seq: u64) -> Vec<(u64, Vec<Vec<u8>>)> {
        let Some(seg) = self.segments.iter().find(|s| s.seq == seq) else {
            return Vec::new();
        };
        let mut chunks = Self::all_chunks(seg);
        chunks.sort_by_key(|(s, c)| (*s, c.min_t));
        let mut out: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        for (s, c) in chunks {
            let mut buf = vec![0u8; c.len as usize];
            if seg.file.read_exact_at(&mut buf, c.offset as u64).is_err() {
                continue;
            }
            match out.last_mut() {
                Some((last, v)) if *last == s => v.push(buf),
                _ => out.push((s, vec![buf])),
            }
        }
        out
    }

    /// The oldest sample time on disk (None when empty).
    pub fn min_time(&self) -> Option<i64> {
        self.segments
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.min_t)
            .min()
    }

    /// The newest sample time on disk of each series.
    pub fn max_times(&self) -> HashMap<u64, i64> {
        self.present.iter().map(|(s, (_, t))| (*s, *t)).collect()
    }

    /// True when `series` has chunks on disk.
    pub fn has(&self, series: u64) -> bool {
        self.present.contains_key(&series)
    }

    /// Bytes of every segment file.
    /// Bytes on disk: segment files and their indexes (the active segment's counted as
    /// sealing will write it), which is what the disk budget limits.
    pub fn bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| {
                let index = match &s.index {
                    Some(idx) => idx.bytes,
                    None => active_index_estimate(s.chunks),
                };
                s.size + index
            })
            .sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Chunks on disk.
    pub fn chunk_count(&self) -> usize {
        self.chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(series: u64, from: i64, n: i64) -> (u64, i64, i64, Vec<u8>) {
        let samples: Vec<(i64, f64)> = (0..n)
            .map(|i| {
                (
                    from + i * 15_000,
                    (series * 1000 + (i * i % 1009) as u64) as f64 / 10.0,
                )
            })
            .collect();
        (
            series,
            from,
            from + (n - 1) * 15_000,
            crate::tsdb::compact::encode(&samples),
        )
    }

    fn all(r: &Ring, s: u64) -> Vec<(i64, f64)> {
        let mut v = Vec::new();
        r.read(s, i64::MIN, i64::MAX, &mut v);
        v
    }

    #[test]
    fn write_read_reopen_and_roll() {
        let d = tempfile::tempdir().unwrap();
        let (mut r, rep) = Ring::open(d.path(), 4096, 1 << 20).unwrap();
        assert_eq!(rep.segments, 0);
        for round in 0..200 {
            let t0 = round * 120 * 15_000;
            r.write(&[chunk(1, t0, 120), chunk(2, t0, 120)]).unwrap();
        }
        assert!(r.segment_count() > 2, "rolled: {}", r.segment_count());
        let one = all(&r, 1);
        assert_eq!(one.len(), 24_000);
        assert!(one.windows(2).all(|w| w[0].0 < w[1].0));
        let mut part = Vec::new();
        r.read(2, 15_000, 30_000, &mut part);
        assert_eq!(part, vec![(15_000, 200.1), (30_000, 200.4)]);
        drop(r);
        // Reopen: sealed segments from their indexes, the active one scanned.
        let (r, rep) = Ring::open(d.path(), 4096, 1 << 20).unwrap();
        assert_eq!(rep.rebuilt_indexes, 0);
        assert_eq!(rep.chunks, 400);
        assert_eq!(all(&r, 1), one);
        assert_eq!(r.max_times()[&2], 199 * 120 * 15_000 + 119 * 15_000);
        // A lost index is rebuilt by scanning its segment.
        let first = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .min()
            .unwrap();
        std::fs::remove_file(&first).unwrap();
        drop(r);
        let (r, rep) = Ring::open(d.path(), 4096, 1 << 20).unwrap();
        assert_eq!(rep.rebuilt_indexes, 1);
        assert_eq!(all(&r, 1), one);
        // So is an index of the fixed-entry format 0.1 wrote (and a damaged one).
        let mut old = b"OMPIDX2\n".to_vec();
        old.extend_from_slice(&[0u8; 36]);
        std::fs::write(&first, &old).unwrap();
        let second = first.with_file_name("000000000002.idx");
        let mut bad = std::fs::read(&second).unwrap();
        bad[9] ^= 0x40;
        std::fs::write(&second, &bad).unwrap();
        drop(r);
        let (r, rep) = Ring::open(d.path(), 4096, 1 << 20).unwrap();
        assert_eq!(rep.rebuilt_indexes, 2);
        assert_eq!(all(&r, 1), one);
        assert_eq!(&std::fs::read(&first).unwrap()[..8], IDX_MAGIC);
    }

    #[test]
    fn index_round_trips_and_finds_every_series() {
        // Sparse series with one to four chunks, offsets in no order, times on both sides
        // of zero.
        let mut chunks = Vec::new();
        for s in 0..200u64 {
            for j in 0..(s % 4 + 1) {
                let min_t = -5_000_000 + (s as i64 * 31 % 97) * 1000 + j as i64 * 1_800_000;
                chunks.push((
                    s * 13 + 5,
                    DiskChunk {
                        min_t,
                        max_t: min_t + 1_785_000 - (s as i64 % 3),
                        offset: ((s * 7919) % 100_000) as u32 + j as u32 * 200,
                        len: 50 + (s % 300) as u32,
                    },
                ));
            }
        }
        let b = encode_index(chunks.clone());
        assert!(b.len() < chunks.len() * 14, "{} bytes", b.len());
        let mut sorted = chunks.clone();
        sorted.sort_by_key(|(s, c)| (*s, c.min_t));
        assert_eq!(decode_index(&b).unwrap(), sorted);
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.idx");
        std::fs::write(&path, &b).unwrap();
        let idx = sealed_index(File::open(&path).unwrap(), &b).unwrap();
        for s in 0..2700 {
            let want: Vec<DiskChunk> = sorted
                .iter()
                .filter(|(x, _)| *x == s)
                .map(|(_, c)| *c)
                .collect();
            assert_eq!(Ring::sealed_chunks(&idx, s), want, "series {s}");
        }
        // Damage and cuts are detected, never a panic.
        for i in [0, 9, b.len() / 2, b.len() - 10, b.len() - 1] {
            let mut bad = b.clone();
            bad[i] ^= 0x10;
            assert!(decode_index(&bad).is_none(), "byte {i}");
        }
        for cut in 0..b.len() {
            assert!(decode_index(&b[..cut]).is_none());
        }
        assert_eq!(decode_index(&encode_index(vec![])), Some(vec![]));
    }

    #[test]
    fn many_series_are_found_through_sealed_indexes() {
        let d = tempfile::tempdir().unwrap();
        let (mut r, _) = Ring::open(d.path(), 8192, 1 << 30).unwrap();
        for round in 0..30 {
            let batch: Vec<_> = (0..300u64)
                .rev()
                .map(|s| chunk(s * 7 + 3, round * 120 * 15_000, 120))
                .collect();
            r.write(&batch).unwrap();
        }
        assert!(r.segment_count() > 10);
        for s in [3u64, 10, 997, 2096] {
            assert_eq!(all(&r, s).len(), 30 * 120, "series {s}");
        }
        assert!(all(&r, 4).is_empty());
        // The disk figure (and budget) counts every file: segments and sealed indexes, plus
        // the index the active segment will get.
        let on_disk: u64 = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        let active = r.segments.back().unwrap();
        assert!(active.index.is_none());
        assert_eq!(r.bytes(), on_disk + active_index_estimate(active.chunks));
        let mut window = Vec::new();
        r.read(997, 5 * 120 * 15_000, 6 * 120 * 15_000 - 1, &mut window);
        assert_eq!(window.len(), 120);
        drop(r);
        let (r, rep) = Ring::open(d.path(), 8192, 1 << 30).unwrap();
        assert_eq!(rep.chunks, 30 * 300);
        assert_eq!(r.chunk_count(), 30 * 300);
        assert_eq!(all(&r, 2096).len(), 30 * 120);
    }

    #[test]
    fn a_torn_active_segment_is_cut() {
        let d = tempfile::tempdir().unwrap();
        let (mut r, _) = Ring::open(d.path(), 1 << 20, 1 << 30).unwrap();
        r.write(&[chunk(7, 0, 50)]).unwrap();
        r.write(&[chunk(7, 50 * 15_000, 50)]).unwrap();
        drop(r);
        let seg = seg_path(d.path(), 1);
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 5).unwrap();
        let (mut r, rep) = Ring::open(d.path(), 1 << 20, 1 << 30).unwrap();
        assert!(rep.truncated > 0);
        assert_eq!(
            all(&r, 7).len(),
            50,
            "the torn chunk is gone, the first intact"
        );
        // Appends continue after the cut.
        r.write(&[chunk(7, 50 * 15_000, 10)]).unwrap();
        drop(r);
        let (r, rep) = Ring::open(d.path(), 1 << 20, 1 << 30).unwrap();
        assert_eq!(rep.truncated, 0);
        assert_eq!(all(&r, 7).len(), 60);
    }

    #[test]
    fn retention_by_bytes_and_by_age() {
        let d = tempfile::tempdir().unwrap();
        let (mut r, _) = Ring::open(d.path(), 4096, 16_384).unwrap();
        let mut dropped = 0;
        // Small chunks with small index entries: enough rounds to pass the budget.
        for round in 0..400 {
            dropped += r.write(&[chunk(1, round * 120 * 15_000, 120)]).unwrap();
            assert!(r.bytes() <= 16_384 + 4096 + 2048, "bounded: {}", r.bytes());
        }
        assert!(dropped > 0);
        let kept = all(&r, 1);
        assert!(kept.len() < 400 * 120 && !kept.is_empty());
        assert_eq!(
            kept.last().unwrap().0,
            399 * 120 * 15_000 + 119 * 15_000,
            "newest kept"
        );
        let files = std::fs::read_dir(d.path()).unwrap().count();
        assert_eq!(
            files,
            r.segment_count() * 2 - 1,
            "segments + indexes of the sealed ones"
        );
        // By age: every segment older than the cut goes, the active one too (replaced).
        let n = r.drop_before(i64::MAX).unwrap();
        assert!(n > 0);
        assert_eq!(r.segment_count(), 1);
        assert!(all(&r, 1).is_empty());
        r.write(&[chunk(1, 0, 10)]).unwrap();
        assert_eq!(all(&r, 1).len(), 10);
    }
}
