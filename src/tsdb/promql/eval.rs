//! The evaluator core: a node is evaluated once over a grid of step times (an instant query
//! is a grid of one). Instant vectors are series of (step index, value) points with shared
//! (`Rc`) label sets; range vectors (selectors and subqueries) are series of samples with
//! the window each step sees, so range functions slide over one slice per series.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use promql_parser::parser::{self, Expr};

use super::super::head::{Labels, Matcher};
use super::super::{Source, is_stale};
use super::{Elem, LOOKBACK_MS, QueryLimits, Range, Value, vector_matchers};

/// A shared label set.
pub(super) type Lbl = Rc<Labels>;

/// Step times `start + i × step` for `i < n`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    pub(super) start: i64,
    pub(super) step: i64,
    pub(super) n: usize,
}

impl Grid {
    pub(super) fn new(start: i64, step: i64, n: usize) -> Grid {
        Grid { start, step, n }
    }

    pub(super) fn t(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }
}

/// An instant-vector series over a grid: points (step index, value) in step order.
#[derive(Debug, Clone)]
pub(super) struct Series {
    pub(super) labels: Lbl,
    pub(super) pts: Vec<(u32, f64)>,
}

/// A range-vector series: samples (time, value) in time order.
pub(super) type Samples = (Lbl, Vec<(i64, f64)>);

/// A range vector over a grid: the samples of each series and, per step, the window
/// `[end - range, end]` it sees (closed on both sides, as in Prometheus 2.42).
pub(super) struct Windows {
    pub(super) series: Vec<Samples>,
    pub(super) range: i64,
    pub(super) ends: Vec<i64>,
}

impl Windows {
    /// Calls `f(step, window)` for each step whose window over `pts` is not empty. Window
    /// ends never decrease, so two cursors walk the samples once.
    pub(super) fn slide(
        &self,
        pts: &[(i64, f64)],
        mut f: impl FnMut(usize, &[(i64, f64)]) -> Result<(), String>,
    ) -> Result<(), String> {
        let (mut lo, mut hi) = (0, 0);
        for (i, &end) in self.ends.iter().enumerate() {
            while hi < pts.len() && pts[hi].0 <= end {
                hi += 1;
            }
            while lo < hi && pts[lo].0 < end - self.range {
                lo += 1;
            }
            if lo < hi {
                f(i, &pts[lo..hi])?;
            }
        }
        Ok(())
    }
}

/// The value of a node over a grid.
pub(super) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<Series>),
    /// A range vector: only an instant query's result (or a function's argument).
    Matrix(Vec<Samples>),
}

impl Val {
    /// The result of an instant query.
    pub(super) fn into_instant(self) -> Value {
        match self {
            Val::Scalar(v) => Value::Scalar(v.first().copied().unwrap_or(f64::NAN)),
            Val::String(s) => Value::String(s),
            Val::Vector(v) => Value::Vector(
                v.into_iter()
                    .filter_map(|s| {
                        s.pts.first().map(|p| Elem {
                            labels: Rc::unwrap_or_clone(s.labels),
                            v: p.1,
                        })
                    })
                    .collect(),
            ),
            Val::Matrix(m) => Value::Matrix(
                m.into_iter()
                    .map(|(l, points)| Range {
                        labels: Rc::unwrap_or_clone(l),
                        points,
                    })
                    .collect(),
            ),
        }
    }

    /// The result of a range query: series merged by label set, sorted by labels.
    pub(super) fn into_range(self, g: Grid) -> Value {
        let mut out: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        match self {
            Val::Scalar(v) => {
                out.insert(
                    vec![],
                    v.into_iter()
                        .enumerate()
                        .map(|(i, x)| (g.t(i), x))
                        .collect(),
                );
            }
            Val::Vector(v) => {
                for s in v {
                    if s.pts.is_empty() {
                        continue;
                    }
                    let pts = s.pts.iter().map(|&(i, x)| (g.t(i as usize), x));
                    match out.get_mut(s.labels.as_ref()) {
                        Some(p) => {
                            p.extend(pts);
                            p.sort_by_key(|x| x.0);
                        }
                        None => {
                            out.insert(Rc::unwrap_or_clone(s.labels), pts.collect());
                        }
                    }
                }
            }
            // Refused before evaluation.
            Val::String(_) | Val::Matrix(_) => {}
        }
        Value::Matrix(
            out.into_iter()
                .map(|(labels, points)| Range { labels, points })
                .collect(),
        )
    }
}

/// Labels without `__name__`.
pub(super) fn drop_name(l: &Lbl) -> Lbl {
    if l.iter().any(|(n, _)| n == "__name__") {
        Rc::new(l.iter().filter(|(n, _)| n != "__name__").cloned().collect())
    } else {
        l.clone()
    }
}

/// Prometheus' "vector cannot contain metrics with the same labelset", for the series of
/// one node (matrix functions check across all steps, other nodes per step).
pub(super) fn check_unique(series: &[Series], per_step: bool) -> Result<(), String> {
    let msg = "vector cannot contain metrics with the same labelset";
    if per_step {
        let mut seen: std::collections::HashMap<(&Labels, u32), ()> = Default::default();
        for s in series {
            for p in &s.pts {
                if seen.insert((s.labels.as_ref(), p.0), ()).is_some() {
                    return Err(msg.into());
                }
            }
        }
    } else {
        let mut seen: std::collections::HashSet<&Labels> = Default::default();
        for s in series.iter().filter(|s| !s.pts.is_empty()) {
            if !seen.insert(s.labels.as_ref()) {
                return Err(msg.into());
            }
        }
    }
    Ok(())
}

pub(super) fn offset_ms(o: &Option<parser::Offset>) -> i64 {
    match o {
        Some(parser::Offset::Pos(d)) => d.as_millis() as i64,
        Some(parser::Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

/// The default step of a subquery without one: Prometheus' default evaluation interval.
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// One query's evaluation: the source, limits, the samples counted so far, and the query's
/// own start and end (what `@ start()` and `@ end()` mean).
pub(super) struct Evaluator<'a> {
    src: &'a dyn Source,
    limits: QueryLimits,
    touched: Cell<usize>,
    query_start: i64,
    query_end: i64,
}

impl<'a> Evaluator<'a> {
    pub(super) fn new(src: &'a dyn Source, limits: QueryLimits, start: i64, end: i64) -> Self {
        Evaluator {
            src,
            limits,
            touched: Cell::new(0),
            query_start: start,
            query_end: end,
        }
    }

    /// Evaluates the query's root.
    pub(super) fn run(&self, e: &Expr, g: Grid) -> Result<Val, String> {
        self.eval(e, g)
    }

    /// Counts samples read or points produced against the query's limit.
    pub(super) fn count(&self, n: usize) -> Result<(), String> {
        let t = self.touched.get() + n;
        self.touched.set(t);
        if t > self.limits.max_samples {
            return Err(format!(
                "query processing would load too many samples into memory (more than {}): narrow the selectors, the time range or raise the step",
                self.limits.max_samples
            ));
        }
        Ok(())
    }

    fn at_ms(&self, at: &Option<parser::AtModifier>) -> Option<i64> {
        match at {
            Some(parser::AtModifier::At(st)) => {
                Some(match st.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => d.as_millis() as i64,
                    Err(e) => -(e.duration().as_millis() as i64),
                })
            }
            Some(parser::AtModifier::Start) => Some(self.query_start),
            Some(parser::AtModifier::End) => Some(self.query_end),
            None => None,
        }
    }

    /// Per step, the time a selector reads at: its `@` time or the step's, minus the offset.
    fn ends(&self, at: &Option<parser::AtModifier>, offset: i64, g: Grid) -> Vec<i64> {
        match self.at_ms(at) {
            Some(a) => vec![a - offset; g.n],
            None => (0..g.n).map(|i| g.t(i) - offset).collect(),
        }
    }

    /// The matching series with samples in `[mint, maxt]`, sorted by labels (the order
    /// Prometheus' storage returns, which fixes the order of float summation).
    fn fetch(&self, ms: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Samples>, String> {
        if maxt < mint {
            return Ok(vec![]);
        }
        let mut got = self.src.select(ms, mint, maxt);
        self.count(got.iter().map(|(_, p)| p.len()).sum())?;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(got.into_iter().map(|(l, p)| (Rc::new(l), p)).collect())
    }

    /// An instant vector selector over the grid: per step the newest sample in the lookback
    /// window `[t - 5m, t]`, unless it is a staleness marker. With `timestamps`, the value is
    /// the sample's time in seconds (for `timestamp()`).
    pub(super) fn selector(
        &self,
        vs: &parser::VectorSelector,
        g: Grid,
        timestamps: bool,
    ) -> Result<Vec<Series>, String> {
        let ends = self.ends(&vs.at, offset_ms(&vs.offset), g);
        let ms = vector_matchers(vs)?;
        let (lo, hi) = (ends[0], ends[ends.len() - 1]);
        let mut out = Vec::new();
        for (labels, pts) in self.fetch(&ms, lo.min(hi) - LOOKBACK_MS, lo.max(hi))? {
            let mut j = 0;
            let mut vals = Vec::new();
            for (i, &end) in ends.iter().enumerate() {
                while j < pts.len() && pts[j].0 <= end {
                    j += 1;
                }
                if j == 0 {
                    continue;
                }
                let (t, v) = pts[j - 1];
                if t < end - LOOKBACK_MS || is_stale(v) {
                    continue;
                }
                vals.push((i as u32, if timestamps { t as f64 / 1000.0 } else { v }));
            }
            if !vals.is_empty() {
                out.push(Series { labels, pts: vals });
            }
        }
        self.count(out.iter().map(|s| s.pts.len()).sum())?;
        Ok(out)
    }

    /// A range vector (matrix selector or subquery, possibly in parentheses) over the grid.
    pub(super) fn windows(&self, e: &Expr, g: Grid) -> Result<Windows, String> {
        match e {
            Expr::Paren(p) => self.windows(&p.expr, g),
            Expr::MatrixSelector(ms) => {
                let range = ms.range.as_millis() as i64;
                let ends = self.ends(&ms.vs.at, offset_ms(&ms.vs.offset), g);
                let m = vector_matchers(&ms.vs)?;
                let series = self
                    .fetch(&m, ends[0] - range, ends[ends.len() - 1])?
                    .into_iter()
                    .map(|(l, mut p)| {
                        // Staleness markers are not values of a range.
                        if p.iter().any(|x| is_stale(x.1)) {
                            p.retain(|x| !is_stale(x.1));
                        }
                        (l, p)
                    })
                    .filter(|(_, p)| !p.is_empty())
                    .collect();
                Ok(Windows {
                    series,
                    range,
                    ends,
                })
            }
            Expr::Subquery(sq) => {
                let range = sq.range.as_millis() as i64;
                let ends = self.ends(&sq.at, offset_ms(&sq.offset), g);
                let step = sq
                    .step
                    .map(|d| d.as_millis() as i64)
                    .filter(|s| *s > 0)
                    .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
                // The inner query runs at multiples of its step from the first window's
                // start to the last window's end.
                let first = ends[0] - range;
                let mut start = step * first.div_euclid(step);
                if start < first {
                    start += step;
                }
                let last = ends[ends.len() - 1];
                let n = if last < start {
                    0
                } else {
                    ((last - start) / step + 1) as usize
                };
                let mut series = Vec::new();
                if n > 0 {
                    let inner = Grid::new(start, step, n);
                    match self.eval(&sq.expr, inner)? {
                        Val::Vector(v) => {
                            for s in v {
                                if !s.pts.is_empty() {
                                    let pts = s.pts.iter().map(|&(i, x)| (inner.t(i as usize), x));
                                    series.push((s.labels, pts.collect()));
                                }
                            }
                        }
                        Val::Scalar(v) => series.push((
                            Rc::new(vec![]),
                            v.into_iter()
                                .enumerate()
                                .map(|(i, x)| (inner.t(i), x))
                                .collect(),
                        )),
                        _ => return Err("a subquery needs an instant vector expression".into()),
                    }
                }
                Ok(Windows {
                    series,
                    range,
                    ends,
                })
            }
            _ => Err("expected a range vector (a selector like metric[5m] or a subquery)".into()),
        }
    }

    /// Evaluates `e` over `g`.
    pub(super) fn eval(&self, e: &Expr, g: Grid) -> Result<Val, String> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; g.n])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, g),
            Expr::Unary(u) => match self.eval(&u.expr, g)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(v) => {
                    let out: Vec<Series> = v
                        .into_iter()
                        .map(|s| Series {
                            labels: drop_name(&s.labels),
                            pts: s.pts.into_iter().map(|(i, x)| (i, -x)).collect(),
                        })
                        .collect();
                    check_unique(&out, false)?;
                    Ok(Val::Vector(out))
                }
                _ => Err("unary minus needs a scalar or an instant vector".into()),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.selector(vs, g, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                if g.n != 1 {
                    return Err("a range vector can only be evaluated at one time".into());
                }
                let w = self.windows(e, g)?;
                let end = w.ends[0];
                let mut out = Vec::new();
                for (l, p) in &w.series {
                    let a = p.partition_point(|x| x.0 < end - w.range);
                    let b = p.partition_point(|x| x.0 <= end);
                    if a < b {
                        out.push((l.clone(), p[a..b].to_vec()));
                    }
                }
                Ok(Val::Matrix(out))
            }
            Expr::Call(c) => self.call(c, g),
            Expr::Aggregate(a) => self.aggregate(a, g),
            Expr::Binary(b) => self.binary(b, g),
            Expr::Extension(_) => Err("extension expressions are not supported".into()),
        }
    }

    /// A scalar argument evaluated per step.
    pub(super) fn scalar(&self, e: &Expr, g: Grid, what: &str) -> Result<Vec<f64>, String> {
        match self.eval(e, g)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(format!("{what} needs a number")),
        }
    }

    /// An instant-vector argument.
    pub(super) fn vector(&self, e: &Expr, g: Grid, what: &str) -> Result<Vec<Series>, String> {
        match self.eval(e, g)? {
            Val::Vector(v) => Ok(v),
            _ => Err(format!("{what} needs an instant vector")),
        }
    }
}

/// The points of `series` regrouped by step: per step, (series index, value) in series
/// order — the instant vector Prometheus sees at that step.
pub(super) fn by_step(series: &[Series], n: usize) -> Vec<Vec<(u32, f64)>> {
    let mut out: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for (si, s) in series.iter().enumerate() {
        for &(i, v) in &s.pts {
            out[i as usize].push((si as u32, v));
        }
    }
    out
}
