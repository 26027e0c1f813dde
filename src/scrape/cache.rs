//! The scrape cache of one target: the series text of each exposition line as written
//! (`name{labels}`) mapped to its series id in the store, as Prometheus' scrape cache does.
//! A scrape of series seen before only splits lines and parses values: no label parsing,
//! sorting, packing or hashing of label sets. It also finds the series that went away
//! (staleness markers) and notices when `# HELP`/`# TYPE` text changed. Sans-IO.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

use crate::tsdb::db::{Ingest, Ingested};
use crate::tsdb::exposition::{self, Format, Limits, Line, Meta};
use crate::tsdb::head::{HeadError, Labels};
use crate::tsdb::wal::Sample;

/// One target's cache.
#[derive(Default)]
pub struct Cache {
    /// The target labels (job, instance and configured ones) the entries were made with:
    /// when they change, every entry is stale.
    base: Labels,
    /// Series text → series id, for the series of the last successful scrape.
    entries: HashMap<Box<str>, Entry>,
    scrape: u64,
    /// Hash of the last scrape's comment lines: metadata is read again only when it changes.
    meta_hash: Option<u64>,
    /// The time the last scrape's samples were stamped with.
    last_stamp: Option<i64>,
    /// The sample lines of the last body and the vector of its known samples, kept for
    /// their capacity.
    lines: Vec<LineRef>,
    spare_known: Vec<Sample>,
    /// The ids of the target's report series (see [`REPORT`]) and the target labels they
    /// were made with: after the first scrape they are stored by id like any hit.
    report: Option<(Labels, [u64; 3])>,
}

/// The series every scrape adds about itself, as Prometheus does.
pub const REPORT: [&str; 3] = ["up", "scrape_duration_seconds", "scrape_samples_scraped"];

/// One sample line of a body, by position: the series text is `body[start..end]`.
#[derive(Debug, Clone, Copy)]
struct LineRef {
    // Positions fit in 32 bits: bodies are capped at 64 MiB (and `plan` refuses 4 GiB).
    line: u32,
    start: u32,
    end: u32,
    v: f64,
    t: Option<i64>,
    /// The series id when the cache knows the text.
    hit: Option<u64>,
}

/// The most samples whose vectors are kept between scrapes.
const KEEP_CAPACITY: usize = 1 << 16;

/// How far a scrape may start from its schedule and still be stamped on it.
pub const STAMP_TOLERANCE_MS: i64 = 25;

struct Entry {
    id: u64,
    /// The scrape that last had this series.
    seen: u64,
}

/// What one scrape body comes to: samples by id, new series by labels, and ids gone stale.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    pub known: Vec<Sample>,
    pub fresh: Vec<Ingest>,
    fresh_keys: Vec<&'a str>,
    /// Series of the last scrape missing from this one (they get a staleness marker).
    pub stale: Vec<u64>,
    /// Sample lines in the body.
    pub samples: usize,
    /// `# TYPE`/`# HELP` read from the body, when they differ from the last scrape's.
    pub meta: Option<BTreeMap<String, Meta>>,
}

impl Plan<'_> {
    /// The plan of a failed scrape: only staleness markers.
    pub fn failed(stale: Vec<u64>) -> Self {
        Plan {
            stale,
            ..Default::default()
        }
    }
}

/// A sample's full label set: the target's labels win for `job` and `instance` (the
/// scraped ones become `exported_job`/`exported_instance`, as Prometheus does with
/// `honor_labels: false`), other scraped labels are kept unless a target label has the name.
pub fn label(base: &Labels, name: &str, scraped: Vec<(String, String)>) -> Labels {
    let mut labels = Vec::with_capacity(base.len() + scraped.len() + 1);
    labels.push(("__name__".to_string(), name.to_string()));
    labels.extend(base.iter().cloned());
    for (k, v) in scraped {
        if k == "job" || k == "instance" {
            labels.push((format!("exported_{k}"), v));
        } else if !base.iter().any(|(n, _)| *n == k) {
            labels.push((k, v));
        }
    }
    labels.sort();
    labels
}

impl Cache {
    /// Reads a scrape body. Fails whole (nothing changes in the cache) on malformed text
    /// or more samples than `sample_limit`. `now` stamps samples without a timestamp.
    ///
    /// A scrape of known series allocates nothing here: the line list and the known
    /// samples' vector are kept between scrapes (give the plan back with [`Cache::recycle`]).
    /// Vectors made anew each scrape cost a `mmap`/`munmap` pair apiece with musl's
    /// allocator, which was a tenth of the scraper's CPU time.
    pub fn plan<'a>(
        &mut self,
        body: &'a str,
        format: Format,
        base: &Labels,
        now: i64,
        sample_limit: usize,
    ) -> Result<Plan<'a>, String> {
        if u32::try_from(body.len()).is_err() {
            return Err(format!("a body of {} bytes is over 4 GiB", body.len()));
        }
        let limits = Limits::default();
        let mut lines = std::mem::take(&mut self.lines);
        lines.clear();
        let mut meta_hash =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        let bad = |e: &dyn std::fmt::Display| format!("bad exposition text: {e}");
        let mut body_lines = exposition::lines(body, &limits);
        while let Some(item) = body_lines.next() {
            let (line, l) = item.map_err(|e| bad(&e))?;
            let l = match l {
                Line::Comment(c) => {
                    meta_hash.write(c.as_bytes());
                    continue;
                }
                Line::Sample(l) => l,
            };
            let (series, v, t) = exposition::split_sample(l, format, &limits)
                .map_err(|e| bad(&format!("line {line}: {e}")))?;
            // A sub-slice of `body`: kept as its position, so the vector outlives the body.
            let start = series.as_ptr() as usize - body.as_ptr() as usize;
            lines.push(LineRef {
                line: line as u32,
                start: start as u32,
                end: (start + series.len()) as u32,
                v,
                t,
                hit: None,
            });
            if lines.len() > sample_limit {
                // Counted to the end for the message; nothing stored.
                let rest = body_lines
                    .filter(|x| matches!(x, Ok((_, Line::Sample(_)))))
                    .count();
                let total = lines.len() + rest;
                return Err(format!(
                    "{total} samples, over the sample_limit of {sample_limit}"
                ));
            }
        }
        let same_base = *base == self.base;
        let mut known = std::mem::take(&mut self.spare_known);
        known.clear();
        let mut plan = Plan {
            samples: lines.len(),
            ..Default::default()
        };
        let mh = meta_hash.finish();
        if self.meta_hash != Some(mh) {
            // Changed metadata (rare): a second pass reads the comments.
            let mut meta = BTreeMap::new();
            for (_, l) in exposition::lines(body, &limits).flatten() {
                if let Line::Comment(c) = l {
                    exposition::parse_comment(c, &mut meta);
                }
            }
            plan.meta = Some(meta);
        }
        // Parse the new series first: a malformed one fails the scrape before the cache
        // changes. A hit is marked seen by the coming scrape number right away (one lookup
        // per line, not two).
        let coming = self.scrape + 1;
        for l in lines.iter_mut() {
            let series = &body[l.start as usize..l.end as usize];
            if same_base && let Some(e) = self.entries.get_mut(series) {
                e.seen = coming;
                l.hit = Some(e.id);
                continue;
            }
            let (name, scraped) = match exposition::parse_series(series, &limits) {
                Ok(x) => x,
                Err(e) => {
                    // The marks made so far name a scrape that did not happen: the next
                    // plan counts from the number after it.
                    self.scrape = coming;
                    return Err(bad(&format!("line {}: {e}", l.line)));
                }
            };
            plan.fresh_keys.push(series);
            plan.fresh.push(Ingest {
                labels: label(base, name, scraped),
                t: l.t.unwrap_or(now),
                v: l.v,
            });
        }
        if !same_base {
            // New target labels: every cached series is another series now.
            plan.stale.extend(self.entries.drain().map(|(_, e)| e.id));
            self.base = base.clone();
        }
        self.meta_hash = Some(mh);
        self.scrape = coming;
        known.extend(lines.iter().filter_map(|l| {
            Some(Sample {
                series: l.hit?,
                t: l.t.unwrap_or(now),
                v: l.v,
            })
        }));
        plan.known = known;
        self.lines = lines;
        self.entries.retain(|_, e| {
            if e.seen == coming {
                return true;
            }
            plan.stale.push(e.id);
            false
        });
        plan.stale.sort_unstable();
        Ok(plan)
    }

    /// Takes back a plan's vectors for the next scrape (the small ones only: a scrape that
    /// was once huge does not keep its memory).
    pub fn recycle(&mut self, plan: Plan<'_>) {
        if plan.known.capacity() <= KEEP_CAPACITY {
            self.spare_known = plan.known;
        }
        if self.lines.capacity() > KEEP_CAPACITY {
            self.lines = Vec::new();
        }
    }

    /// The time to stamp a scrape started at `now` with: exactly one interval after the
    /// last stamp when `now` is within [`STAMP_TOLERANCE_MS`] of it, else `now`. Timer and
    /// thread wake-ups jitter by milliseconds; stamps on the schedule make every interval
    /// equal, which the closed-chunk encoding stores in no bits at all (a few milliseconds
    /// of jitter cost about two bytes a sample).
    pub fn stamp(&mut self, now: i64, interval_ms: i64) -> i64 {
        let t = match self.last_stamp {
            Some(last) if (now - (last + interval_ms)).abs() <= STAMP_TOLERANCE_MS => {
                last + interval_ms
            }
            _ => now,
        };
        self.last_stamp = Some(t);
        t
    }

    /// Remembers the ids the store gave the plan's new series, and forgets series the
    /// store no longer knows (they are read by labels next time).
    pub fn learn(&mut self, plan: &Plan<'_>, ingested: &Ingested) {
        for (key, id) in plan.fresh_keys.iter().zip(&ingested.ids) {
            if let Some(id) = id {
                self.entries.insert(
                    (*key).into(),
                    Entry {
                        id: *id,
                        seen: self.scrape,
                    },
                );
            }
        }
        // Rare (a series that left memory): found by id rather than keeping every key.
        let mut gone: Vec<u64> = ingested
            .rejected_known
            .iter()
            .filter(|(_, e)| matches!(e, HeadError::UnknownSeries(_)))
            .filter_map(|(i, _)| Some(plan.known.get(*i)?.series))
            .collect();
        if !gone.is_empty() {
            gone.sort_unstable();
            self.entries
                .retain(|_, e| gone.binary_search(&e.id).is_err());
            if let Some((_, ids)) = &self.report
                && ids.iter().any(|id| gone.binary_search(id).is_ok())
            {
                self.report = None;
            }
        }
    }

    /// The ids of the report series for these target labels, once learnt.
    pub fn report_ids(&self, base: &Labels) -> Option<[u64; 3]> {
        match &self.report {
            Some((b, ids)) if b == base => Some(*ids),
            _ => None,
        }
    }

    /// Remembers the ids the store gave the report series (in [`REPORT`] order).
    pub fn learn_report(&mut self, base: &Labels, ids: &[Option<u64>]) {
        if let [Some(a), Some(b), Some(c)] = ids {
            self.report = Some((base.clone(), [*a, *b, *c]));
        }
    }

    /// A failed scrape: every series of the last one is stale; returns their ids.
    pub fn fail(&mut self) -> Vec<u64> {
        self.scrape += 1;
        let mut ids: Vec<u64> = self.entries.drain().map(|(_, e)| e.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the store's id assignment: one id per label set.
    #[derive(Default)]
    struct Ids(HashMap<Labels, u64>);

    impl Ids {
        fn ingest(&mut self, plan: &Plan<'_>) -> Ingested {
            let n = self.0.len() as u64;
            let ids = plan
                .fresh
                .iter()
                .enumerate()
                .map(|(i, s)| Some(*self.0.entry(s.labels.clone()).or_insert(n + i as u64 + 1)))
                .collect();
            Ingested {
                ids,
                accepted: plan.known.len() + plan.fresh.len(),
                ..Default::default()
            }
        }
    }

    fn base() -> Labels {
        vec![
            ("job".into(), "node".into()),
            ("instance".into(), "h:9100".into()),
            ("dc".into(), "x".into()),
        ]
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        let mut v: Labels = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        v.sort();
        v
    }

    const BODY: &str = "# HELP a_total A.\n# TYPE a_total counter\na_total{mode=\"idle\",job=\"inner\"} 1\na_total{mode=\"us\\\"er\"} 2 1700000000000\nb 3\n";

    #[test]
    fn the_second_scrape_of_the_same_series_is_all_hits() {
        let (mut c, mut ids) = (Cache::default(), Ids::default());
        let p = c.plan(BODY, Format::Prometheus, &base(), 5, 100).unwrap();
        assert_eq!((p.known.len(), p.fresh.len(), p.samples), (0, 3, 3));
        assert_eq!(
            p.fresh[0].labels,
            l(&[
                ("__name__", "a_total"),
                ("dc", "x"),
                ("exported_job", "inner"),
                ("instance", "h:9100"),
                ("job", "node"),
                ("mode", "idle"),
            ])
        );
        assert_eq!(p.fresh[1].labels[4], ("mode".into(), "us\"er".into()));
        assert_eq!((p.fresh[0].t, p.fresh[1].t), (5, 1_700_000_000_000));
        assert_eq!(
            p.meta.as_ref().unwrap()["a_total"].kind.as_deref(),
            Some("counter")
        );
        let r = ids.ingest(&p);
        c.learn(&p, &r);
        assert_eq!(c.len(), 3);

        let body2 = BODY.replace("} 1\n", "} 10\n");
        let p = c
            .plan(&body2, Format::Prometheus, &base(), 20, 100)
            .unwrap();
        assert!(p.fresh.is_empty() && p.stale.is_empty() && p.meta.is_none());
        let got: Vec<(u64, i64, f64)> = p.known.iter().map(|s| (s.series, s.t, s.v)).collect();
        let want_ids: Vec<u64> = r.ids.iter().map(|i| i.unwrap()).collect();
        assert_eq!(
            got,
            vec![
                (want_ids[0], 20, 10.0),
                (want_ids[1], 1_700_000_000_000, 2.0),
                (want_ids[2], 20, 3.0)
            ]
        );
    }

    #[test]
    fn gone_series_are_stale_and_new_ones_fresh() {
        let (mut c, mut ids) = (Cache::default(), Ids::default());
        let p = c.plan(BODY, Format::Prometheus, &base(), 5, 100).unwrap();
        let r = ids.ingest(&p);
        c.learn(&p, &r);
        let b_id = r.ids[2].unwrap();
        let body2 = BODY.replace("b 3\n", "c 4\n");
        let p = c.plan(&body2, Format::Prometheus, &base(), 6, 100).unwrap();
        assert_eq!(p.stale, vec![b_id]);
        assert_eq!((p.known.len(), p.fresh.len()), (2, 1));
        assert_eq!(p.fresh[0].labels[0], ("__name__".into(), "c".into()));
        let r2 = ids.ingest(&p);
        c.learn(&p, &r2);
        // b comes back: a new entry, not stale twice.
        let p = c.plan(BODY, Format::Prometheus, &base(), 7, 100).unwrap();
        assert_eq!(p.stale, vec![r2.ids[0].unwrap()]);
        assert_eq!(p.fresh.len(), 1);
    }

    #[test]
    fn bad_bodies_and_limits_change_nothing() {
        let (mut c, mut ids) = (Cache::default(), Ids::default());
        let p = c.plan(BODY, Format::Prometheus, &base(), 5, 100).unwrap();
        let r = ids.ingest(&p);
        c.learn(&p, &r);
        let bad = format!("{BODY}d{{x=1}} 2\n");
        let e = c
            .plan(&bad, Format::Prometheus, &base(), 6, 100)
            .unwrap_err();
        assert!(e.contains("line 6") && e.contains("expected \""), "{e}");
        let e = c.plan(BODY, Format::Prometheus, &base(), 6, 2).unwrap_err();
        assert_eq!(e, "3 samples, over the sample_limit of 2");
        let p = c.plan(BODY, Format::Prometheus, &base(), 7, 100).unwrap();
        assert_eq!((p.known.len(), p.fresh.len(), p.stale.len()), (3, 0, 0));
        // A failed fetch: everything stale, the next scrape starts afresh.
        assert_eq!(c.fail().len(), 3);
        let p = c.plan(BODY, Format::Prometheus, &base(), 8, 100).unwrap();
        assert_eq!((p.known.len(), p.fresh.len(), p.stale.len()), (0, 3, 0));
    }

    /// A body that fails on a new series after its known ones were looked up: the next
    /// good body without `b` still makes `b` stale (the failed attempt's marks don't count).
    #[test]
    fn a_failed_plan_does_not_count_as_seeing_its_series() {
        let (mut c, mut ids) = (Cache::default(), Ids::default());
        let p = c.plan(BODY, Format::Prometheus, &base(), 5, 100).unwrap();
        let r = ids.ingest(&p);
        c.learn(&p, &r);
        let b_id = r.ids[2].unwrap();
        let bad = format!("{BODY}d{{x=1}} 2\n");
        assert!(c.plan(&bad, Format::Prometheus, &base(), 6, 100).is_err());
        let without_b = BODY.replace("b 3\n", "");
        let p = c
            .plan(&without_b, Format::Prometheus, &base(), 7, 100)
            .unwrap();
        assert_eq!(p.stale, vec![b_id]);
        assert_eq!((p.known.len(), p.fresh.len()), (2, 0));
    }

    #[test]
    fn new_target_labels_make_new_series_and_unknown_ids_are_forgotten() {
        let (mut c, mut ids) = (Cache::default(), Ids::default());
        let p = c.plan(BODY, Format::Prometheus, &base(), 5, 100).unwrap();
        let r = ids.ingest(&p);
        c.learn(&p, &r);
        let mut b2 = base();
        b2[2].1 = "y".into();
        let p = c.plan(BODY, Format::Prometheus, &b2, 6, 100).unwrap();
        assert_eq!(p.stale.len(), 3);
        assert_eq!(p.fresh.len(), 3);
        assert!(p.fresh[0].labels.contains(&("dc".into(), "y".into())));
        let r = ids.ingest(&p);
        c.learn(&p, &r);
        // The store lost a series (it left the head): the cache forgets it.
        let p = c.plan(BODY, Format::Prometheus, &b2, 7, 100).unwrap();
        let gone = p.known[0].series;
        c.learn(
            &p,
            &Ingested {
                rejected_known: vec![(0, HeadError::UnknownSeries(gone))],
                ..Default::default()
            },
        );
        let p = c.plan(BODY, Format::Prometheus, &b2, 8, 100).unwrap();
        assert_eq!((p.known.len(), p.fresh.len()), (2, 1));
    }

    /// Report series ids hold for the target labels they were learnt with, and are
    /// forgotten when the store no longer knows one of them.
    #[test]
    fn report_series_are_known_by_id_until_the_store_forgets_one() {
        let mut c = Cache::default();
        assert_eq!(c.report_ids(&base()), None);
        c.learn_report(&base(), &[Some(7), None, Some(9)]);
        assert_eq!(c.report_ids(&base()), None, "all three or none");
        c.learn_report(&base(), &[Some(7), Some(8), Some(9)]);
        assert_eq!(c.report_ids(&base()), Some([7, 8, 9]));
        let mut b2 = base();
        b2[2].1 = "y".into();
        assert_eq!(c.report_ids(&b2), None, "other target labels, other series");
        let p = Plan {
            known: vec![Sample {
                series: 8,
                t: 1,
                v: 1.0,
            }],
            ..Default::default()
        };
        c.learn(
            &p,
            &Ingested {
                rejected_known: vec![(0, HeadError::UnknownSeries(8))],
                ..Default::default()
            },
        );
        assert_eq!(c.report_ids(&base()), None);
    }

    /// A recycled plan's vector carries the next scrape's known samples (no allocation).
    #[test]
    fn recycled_plans_lend_their_vectors_to_the_next_scrape() {
        let (mut c, mut ids) = (Cache::default(), Ids::default());
        let p = c.plan(BODY, Format::Prometheus, &base(), 5, 100).unwrap();
        let r = ids.ingest(&p);
        c.learn(&p, &r);
        c.recycle(p);
        let p = c.plan(BODY, Format::Prometheus, &base(), 6, 100).unwrap();
        assert_eq!(p.known.len(), 3);
        let kept = p.known.as_ptr();
        c.recycle(p);
        let p = c.plan(BODY, Format::Prometheus, &base(), 7, 100).unwrap();
        assert_eq!(p.known.as_ptr(), kept);
        assert_eq!(
            p.known.iter().map(|s| s.t).collect::<Vec<_>>(),
            [7, 1_700_000_000_000, 7]
        );
    }

    #[test]
    fn scrapes_near_their_schedule_are_stamped_on_it() {
        let mut c = Cache::default();
        assert_eq!(
            c.stamp(1_000_007, 15_000),
            1_000_007,
            "the first is as it came"
        );
        assert_eq!(c.stamp(1_015_020, 15_000), 1_015_007);
        assert_eq!(c.stamp(1_029_990, 15_000), 1_030_007);
        // Late past the tolerance (a busy machine, a slow target): the real time.
        assert_eq!(c.stamp(1_045_100, 15_000), 1_045_100);
        assert_eq!(c.stamp(1_060_090, 15_000), 1_060_100);
        // A changed interval starts again from the real time.
        assert_eq!(c.stamp(1_065_100, 30_000), 1_065_100);
    }

    #[test]
    fn metadata_is_read_again_only_when_it_changes() {
        let mut c = Cache::default();
        assert!(
            c.plan(BODY, Format::Prometheus, &base(), 5, 100)
                .unwrap()
                .meta
                .is_some()
        );
        assert!(
            c.plan(BODY, Format::Prometheus, &base(), 6, 100)
                .unwrap()
                .meta
                .is_none()
        );
        let changed = BODY.replace("A.", "B.");
        let m = c
            .plan(&changed, Format::Prometheus, &base(), 7, 100)
            .unwrap()
            .meta;
        assert_eq!(m.unwrap()["a_total"].help.as_deref(), Some("B."));
    }
}
