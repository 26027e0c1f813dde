//! Aggregations (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`, `topk`,
//! `bottomk`, `quantile`, `count_values`) with `by`/`without`. Group keys are computed once
//! per series; each step then aggregates the instant vector of that step exactly as
//! Prometheus 2.42's `aggregation` does (same update order and formulas, the same heap for
//! `topk`/`bottomk`, so ties and float rounding come out the same).

use std::collections::HashMap;
use std::rc::Rc;

use promql_parser::parser::{self, Expr, LabelModifier};

use super::super::exposition::valid_label_name;
use super::super::head::Labels;
use super::eval::{Evaluator, Grid, Lbl, Series, Val, by_step};
use super::functions::quantile;

/// The labels a group keeps: `by` keeps the listed ones, `without` drops them and the name.
fn group_labels(l: &Labels, m: &Option<LabelModifier>) -> Labels {
    match m {
        Some(LabelModifier::Include(by)) => l
            .iter()
            .filter(|(n, _)| by.labels.contains(n))
            .cloned()
            .collect(),
        Some(LabelModifier::Exclude(without)) => l
            .iter()
            .filter(|(n, _)| n != "__name__" && !without.labels.contains(n))
            .cloned()
            .collect(),
        None => vec![],
    }
}

/// One group's running state at one step.
#[derive(Clone)]
struct Acc {
    value: f64,
    mean: f64,
    count: f64,
    /// topk/bottomk: (series index, value) in Go heap order; quantile: the values.
    heap: Vec<(u32, f64)>,
}

/// Go's `container/heap` over (series, value) with Prometheus' comparison (NaN lowest).
struct Heap<'h> {
    items: &'h mut Vec<(u32, f64)>,
    reverse: bool,
}

impl Heap<'_> {
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.items[i].1, self.items[j].1);
        if a.is_nan() {
            return true;
        }
        if self.reverse { a > b } else { a < b }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if i == j || !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize, n: usize) {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && self.less(j1 + 1, j1) {
                j = j1 + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
    }

    fn push(&mut self, x: (u32, f64)) {
        self.items.push(x);
        let n = self.items.len();
        self.up(n - 1);
    }

    fn pop(&mut self) {
        let n = self.items.len() - 1;
        self.items.swap(0, n);
        self.down(0, n);
        self.items.pop();
    }
}

impl Evaluator<'_> {
    pub(super) fn aggregate(&self, a: &parser::AggregateExpr, g: Grid) -> Result<Val, String> {
        let op = a.op.to_string().to_lowercase();
        let param: Option<&Expr> = a.param.as_deref();
        let input = self.vector(&a.expr, g, &format!("{op}()"))?;
        let steps = by_step(&input, g.n);
        match op.as_str() {
            "topk" | "bottomk" => {
                let k = self.scalar(param.ok_or("topk() needs k")?, g, &format!("{op}() k"))?;
                self.top(&op, &k, &input, &steps, &a.modifier, g)
            }
            "count_values" => {
                let label = match param {
                    Some(Expr::StringLiteral(s)) => super::unescape(&s.val),
                    _ => return Err("count_values() needs a label name string".into()),
                };
                if !valid_label_name(&label) {
                    return Err(format!("invalid label name {label:?}"));
                }
                self.count_values(&label, &input, &steps, &a.modifier, g)
            }
            _ => {
                let q = match (op.as_str(), param) {
                    ("quantile", Some(p)) => self.scalar(p, g, "quantile()")?,
                    _ => vec![],
                };
                self.simple(&op, &q, &input, &steps, &a.modifier)
            }
        }
    }

    /// Groups of the input series (index per series, labels per group).
    fn groups(input: &[Series], m: &Option<LabelModifier>) -> (Vec<usize>, Vec<Lbl>) {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut labels = Vec::new();
        let of = input
            .iter()
            .map(|s| {
                let key = group_labels(&s.labels, m);
                let n = index.len();
                *index.entry(key).or_insert_with_key(|k| {
                    labels.push(Rc::new(k.clone()));
                    n
                })
            })
            .collect();
        (of, labels)
    }

    fn simple(
        &self,
        op: &str,
        q: &[f64],
        input: &[Series],
        steps: &[Vec<(u32, f64)>],
        m: &Option<LabelModifier>,
    ) -> Result<Val, String> {
        let (of, labels) = Self::groups(input, m);
        let mut out: Vec<Series> = labels
            .iter()
            .map(|l| Series {
                labels: l.clone(),
                pts: vec![],
            })
            .collect();
        let mut accs: Vec<Option<Acc>> = vec![None; labels.len()];
        let mut order: Vec<usize> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            for &(si, v) in step {
                let gi = of[si as usize];
                let Some(acc) = &mut accs[gi] else {
                    order.push(gi);
                    accs[gi] = Some(Acc {
                        value: match op {
                            "stddev" | "stdvar" => 0.0,
                            "group" => 1.0,
                            _ => v,
                        },
                        mean: v,
                        count: 1.0,
                        heap: if op == "quantile" {
                            vec![(si, v)]
                        } else {
                            vec![]
                        },
                    });
                    continue;
                };
                match op {
                    "sum" => acc.value += v,
                    "avg" => {
                        acc.count += 1.0;
                        if acc.mean.is_infinite() {
                            if v.is_infinite() && (acc.mean > 0.0) == (v > 0.0) {
                                continue;
                            }
                            if !v.is_infinite() && !v.is_nan() {
                                continue;
                            }
                        }
                        acc.mean += v / acc.count - acc.mean / acc.count;
                    }
                    "max" => {
                        if acc.value < v || acc.value.is_nan() {
                            acc.value = v
                        }
                    }
                    "min" => {
                        if acc.value > v || acc.value.is_nan() {
                            acc.value = v
                        }
                    }
                    "count" => acc.count += 1.0,
                    "stddev" | "stdvar" => {
                        acc.count += 1.0;
                        let delta = v - acc.mean;
                        acc.mean += delta / acc.count;
                        acc.value += delta * (v - acc.mean);
                    }
                    "quantile" => acc.heap.push((si, v)),
                    "group" => {}
                    other => return Err(format!("aggregation {other}() is not supported")),
                }
            }
            for gi in order.drain(..) {
                let Some(acc) = accs[gi].take() else { continue };
                let v = match op {
                    "avg" => acc.mean,
                    "count" => acc.count,
                    "stdvar" => acc.value / acc.count,
                    "stddev" => (acc.value / acc.count).sqrt(),
                    "quantile" => {
                        let mut vals: Vec<f64> = acc.heap.iter().map(|x| x.1).collect();
                        quantile(q[i], &mut vals)
                    }
                    _ => acc.value,
                };
                out[gi].pts.push((i as u32, v));
            }
        }
        out.retain(|s| !s.pts.is_empty());
        self.count(out.iter().map(|s| s.pts.len()).sum())?;
        Ok(Val::Vector(out))
    }

    fn top(
        &self,
        op: &str,
        k: &[f64],
        input: &[Series],
        steps: &[Vec<(u32, f64)>],
        m: &Option<LabelModifier>,
        g: Grid,
    ) -> Result<Val, String> {
        let reverse = op == "bottomk";
        let (of, labels) = Self::groups(input, m);
        // The selected points keep their series' labels.
        let mut out: Vec<Series> = input
            .iter()
            .map(|s| Series {
                labels: s.labels.clone(),
                pts: vec![],
            })
            .collect();
        let mut heaps: Vec<Option<Vec<(u32, f64)>>> = vec![None; labels.len()];
        let mut order = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let kf = k[i];
            if !(kf.is_finite() || kf.is_nan()) || kf.abs() >= 9.223_372_036_854_776e18 {
                return Err(format!("Scalar value {kf} overflows int64"));
            }
            let k = if kf.is_nan() { i64::MIN } else { kf as i64 };
            if k < 1 {
                continue;
            }
            for &(si, v) in step {
                let gi = of[si as usize];
                let Some(items) = &mut heaps[gi] else {
                    order.push(gi);
                    heaps[gi] = Some(vec![(si, v)]);
                    continue;
                };
                let top = items[0].1;
                let better = if reverse { top > v } else { top < v };
                if (items.len() as i64) < k || better || top.is_nan() {
                    let mut h = Heap { items, reverse };
                    if h.items.len() as i64 == k {
                        if k == 1 {
                            h.items[0] = (si, v);
                            continue;
                        }
                        h.pop();
                    }
                    h.push((si, v));
                }
            }
            for gi in order.drain(..) {
                for (si, v) in heaps[gi].take().unwrap_or_default() {
                    out[si as usize].pts.push((i as u32, v));
                }
            }
        }
        if g.n == 1 {
            // An instant query lists each group's picks best first, as Prometheus does.
            out.retain(|s| !s.pts.is_empty());
            out.sort_by(|a, b| {
                let (x, y) = (a.pts[0].1, b.pts[0].1);
                if reverse {
                    x.total_cmp(&y)
                } else {
                    y.total_cmp(&x)
                }
            });
        }
        out.retain(|s| !s.pts.is_empty());
        Ok(Val::Vector(out))
    }

    fn count_values(
        &self,
        label: &str,
        input: &[Series],
        steps: &[Vec<(u32, f64)>],
        m: &Option<LabelModifier>,
        g: Grid,
    ) -> Result<Val, String> {
        // The value becomes a label first; then the group key includes it.
        let m = match m {
            Some(LabelModifier::Include(by)) => {
                let mut by = by.clone();
                by.labels.push(label.to_string());
                Some(LabelModifier::Include(by))
            }
            Some(LabelModifier::Exclude(w)) => Some(LabelModifier::Exclude(w.clone())),
            None => Some(LabelModifier::Include(promql_parser::label::Labels {
                labels: vec![label.to_string()],
            })),
        };
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let mut counts: HashMap<usize, f64> = HashMap::new();
            let mut order = Vec::new();
            for &(si, v) in step {
                let mut l: Labels = input[si as usize]
                    .labels
                    .iter()
                    .filter(|(n, _)| n != label)
                    .cloned()
                    .collect();
                let at = l.partition_point(|(n, _)| n.as_str() < label);
                l.insert(at, (label.to_string(), go_format_float(v)));
                let key = group_labels(&l, &m);
                let n = out.len();
                let gi = *index.entry(key.clone()).or_insert(n);
                if gi == out.len() {
                    out.push(Series {
                        labels: Rc::new(key),
                        pts: vec![],
                    });
                }
                let c = counts.entry(gi).or_insert_with(|| {
                    order.push(gi);
                    0.0
                });
                *c += 1.0;
            }
            for gi in order {
                out[gi].pts.push((i as u32, counts[&gi]));
            }
        }
        self.unique_vector(out, g)
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, no exponent.
fn go_format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}
