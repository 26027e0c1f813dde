//! PromQL functions as Prometheus 2.42 defines them: range functions slide over each
//! series' samples once for all steps; the others map an instant vector point by point or
//! step by step. Numeric cores (`extrapolated`, `linear_regression`, `bucket_quantile`,
//! Kahan sums, `quantile`) follow Prometheus' order of float operations so results match
//! to the last bit where Go's math library allows.

use std::collections::HashMap;
use std::rc::Rc;

use chrono::{Datelike, Timelike};
use promql_parser::parser::{self, Expr};

use super::super::exposition::valid_label_name;
use super::super::head::{Labels, MatchOp};
use super::eval::{Evaluator, Grid, Lbl, Series, Val, by_step, check_unique, drop_name};
use super::{unescape, vector_matchers};

/// A range function: (step, window samples, window end, range) to the step's value.
type WindowFn<'f> = dyn FnMut(usize, &[(i64, f64)], i64, i64) -> Result<Option<f64>, String> + 'f;

impl Evaluator<'_> {
    pub(super) fn call(&self, c: &parser::Call, g: Grid) -> Result<Val, String> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| unparen(a)).collect();
        let arg = |i: usize| -> Result<&Expr, String> {
            args.get(i)
                .copied()
                .ok_or_else(|| format!("{name}() is missing argument {}", i + 1))
        };
        let scalar_arg =
            |i: usize| self.scalar(arg(i)?, g, &format!("{name}() argument {}", i + 1));
        let times = |g: Grid| (0..g.n).map(move |i| g.t(i));
        match name {
            "time" => Ok(Val::Scalar(times(g).map(|t| t as f64 / 1000.0).collect())),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; g.n])),
            "vector" => {
                let v = scalar_arg(0)?;
                Ok(Val::Vector(vec![Series {
                    labels: Rc::new(vec![]),
                    pts: v
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (i as u32, x))
                        .collect(),
                }]))
            }
            "scalar" => {
                let v = self.vector(arg(0)?, g, "scalar()")?;
                let mut out = vec![f64::NAN; g.n];
                let mut count = vec![0u32; g.n];
                for s in &v {
                    for &(i, x) in &s.pts {
                        count[i as usize] += 1;
                        out[i as usize] = x;
                    }
                }
                for (o, c) in out.iter_mut().zip(count) {
                    if c != 1 {
                        *o = f64::NAN;
                    }
                }
                Ok(Val::Scalar(out))
            }
            "rate" | "increase" | "delta" => {
                let (counter, per_second) = (name != "delta", name == "rate");
                self.range_fn(arg(0)?, g, false, &mut |_, w, end, range| {
                    Ok(extrapolated(w, end, range, counter, per_second))
                })
            }
            "irate" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                Ok(instant_rate(w, true))
            }),
            "idelta" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                Ok(instant_rate(w, false))
            }),
            "avg_over_time" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| Ok(Some(avg(w)))),
            "sum_over_time" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                let (s, c) = w.iter().fold((0.0, 0.0), |(s, c), x| kahan_inc(x.1, s, c));
                Ok(Some(if s.is_infinite() { s } else { s + c }))
            }),
            "min_over_time" => self.extreme_over_time(arg(0)?, g, false),
            "max_over_time" => self.extreme_over_time(arg(0)?, g, true),
            "count_over_time" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                Ok(Some(w.len() as f64))
            }),
            "last_over_time" => {
                // Keeps the metric name: it acts like a selector.
                self.range_fn(arg(0)?, g, true, &mut |_, w, _, _| {
                    Ok(Some(w[w.len() - 1].1))
                })
            }
            "present_over_time" => {
                self.range_fn(arg(0)?, g, false, &mut |_, _, _, _| Ok(Some(1.0)))
            }
            "stddev_over_time" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                Ok(Some(stdvar(w).sqrt()))
            }),
            "stdvar_over_time" => {
                self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| Ok(Some(stdvar(w))))
            }
            "quantile_over_time" => {
                let q = scalar_arg(0)?;
                self.range_fn(arg(1)?, g, false, &mut |i, w, _, _| {
                    let mut vals: Vec<f64> = w.iter().map(|x| x.1).collect();
                    Ok(Some(quantile(q[i], &mut vals)))
                })
            }
            "changes" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                Ok(Some(
                    w.windows(2)
                        .filter(|p| p[1].1 != p[0].1 && !(p[0].1.is_nan() && p[1].1.is_nan()))
                        .count() as f64,
                ))
            }),
            "resets" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                Ok(Some(w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64))
            }),
            "deriv" => self.range_fn(arg(0)?, g, false, &mut |_, w, _, _| {
                Ok(linear_regression(w, w[0].0).map(|(slope, _)| slope))
            }),
            "predict_linear" => {
                let secs = scalar_arg(1)?;
                let ts: Vec<i64> = times(g).collect();
                self.range_fn(arg(0)?, g, false, &mut |i, w, _, _| {
                    // Prometheus 2.42 anchors the line at the evaluation time (not the
                    // window end, which differs under offset or @).
                    Ok(linear_regression(w, ts[i]).map(|(slope, icpt)| icpt + slope * secs[i]))
                })
            }
            "holt_winters" => {
                let (sf, tf) = (scalar_arg(1)?, scalar_arg(2)?);
                self.range_fn(arg(0)?, g, false, &mut |i, w, _, _| {
                    holt_winters(w, sf[i], tf[i])
                })
            }
            "absent_over_time" => {
                let w = self.windows(arg(0)?, g)?;
                let mut present = vec![false; g.n];
                for (_, pts) in &w.series {
                    w.slide(pts, |i, _| {
                        present[i] = true;
                        Ok(())
                    })?;
                }
                Ok(Val::Vector(absent_series(arg(0)?, &present)?))
            }
            "absent" => {
                let v = self.vector(arg(0)?, g, "absent()")?;
                let mut present = vec![false; g.n];
                for s in &v {
                    for &(i, _) in &s.pts {
                        present[i as usize] = true;
                    }
                }
                Ok(Val::Vector(absent_series(arg(0)?, &present)?))
            }
            "abs" => self.map(arg(0)?, g, f64::abs),
            "ceil" => self.map(arg(0)?, g, f64::ceil),
            "floor" => self.map(arg(0)?, g, f64::floor),
            "exp" => self.map(arg(0)?, g, f64::exp),
            "sqrt" => self.map(arg(0)?, g, f64::sqrt),
            "ln" => self.map(arg(0)?, g, f64::ln),
            "log2" => self.map(arg(0)?, g, f64::log2),
            "log10" => self.map(arg(0)?, g, f64::log10),
            "sin" => self.map(arg(0)?, g, f64::sin),
            "cos" => self.map(arg(0)?, g, f64::cos),
            "tan" => self.map(arg(0)?, g, f64::tan),
            "asin" => self.map(arg(0)?, g, f64::asin),
            "acos" => self.map(arg(0)?, g, f64::acos),
            "atan" => self.map(arg(0)?, g, f64::atan),
            "sinh" => self.map(arg(0)?, g, f64::sinh),
            "cosh" => self.map(arg(0)?, g, f64::cosh),
            "tanh" => self.map(arg(0)?, g, f64::tanh),
            "asinh" => self.map(arg(0)?, g, f64::asinh),
            "acosh" => self.map(arg(0)?, g, f64::acosh),
            "atanh" => self.map(arg(0)?, g, f64::atanh),
            "deg" => self.map(arg(0)?, g, |v| v * 180.0 / std::f64::consts::PI),
            "rad" => self.map(arg(0)?, g, |v| v * std::f64::consts::PI / 180.0),
            "sgn" => self.map(arg(0)?, g, |v| {
                if v < 0.0 {
                    -1.0
                } else if v > 0.0 {
                    1.0
                } else {
                    v
                }
            }),
            "clamp" | "clamp_min" | "clamp_max" => {
                let (lo, hi) = match name {
                    "clamp" => (scalar_arg(1)?, scalar_arg(2)?),
                    "clamp_min" => (scalar_arg(1)?, vec![f64::NAN; g.n]),
                    _ => (vec![f64::NAN; g.n], scalar_arg(1)?),
                };
                self.map_steps(arg(0)?, g, |i, v| match name {
                    // Go's math.Max/Min: NaN wins.
                    "clamp" if hi[i] < lo[i] => None,
                    "clamp" => Some(go_max(lo[i], go_min(hi[i], v))),
                    "clamp_min" => Some(go_max(v, lo[i])),
                    _ => Some(go_min(v, hi[i])),
                })
            }
            "round" => {
                let to = if args.len() > 1 {
                    scalar_arg(1)?
                } else {
                    vec![1.0; g.n]
                };
                self.map_steps(arg(0)?, g, |i, v| {
                    let inv = 1.0 / to[i];
                    Some((v * inv + 0.5).floor() / inv)
                })
            }
            "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour"
            | "minute" | "month" | "year" => {
                let f = |secs: f64| -> f64 {
                    let Some(d) = chrono::DateTime::from_timestamp(secs as i64, 0) else {
                        return f64::NAN;
                    };
                    (match name {
                        "days_in_month" => {
                            let (y, m) = (d.year(), d.month());
                            let next = if m == 12 {
                                chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)
                            } else {
                                chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)
                            };
                            next.and_then(|n| n.pred_opt()).map_or(0, |l| l.day())
                        }
                        "day_of_month" => d.day(),
                        "day_of_week" => d.weekday().num_days_from_sunday(),
                        "day_of_year" => d.ordinal(),
                        "hour" => d.hour(),
                        "minute" => d.minute(),
                        "month" => d.month(),
                        _ => return d.year() as f64,
                    }) as f64
                };
                match args.first() {
                    None => Ok(Val::Vector(vec![Series {
                        labels: Rc::new(vec![]),
                        pts: times(g)
                            .enumerate()
                            .map(|(i, t)| (i as u32, f((t / 1000) as f64)))
                            .collect(),
                    }])),
                    Some(a) => self.map(a, g, f),
                }
            }
            "timestamp" => {
                let out: Vec<Series> = match arg(0)? {
                    Expr::VectorSelector(vs) => self.selector(vs, g, true)?,
                    other => self
                        .vector(other, g, "timestamp()")?
                        .into_iter()
                        .map(|s| Series {
                            labels: s.labels,
                            pts: s
                                .pts
                                .into_iter()
                                .map(|(i, _)| (i, g.t(i as usize) as f64 / 1000.0))
                                .collect(),
                        })
                        .collect(),
                };
                let out: Vec<Series> = out
                    .into_iter()
                    .map(|s| Series {
                        labels: drop_name(&s.labels),
                        pts: s.pts,
                    })
                    .collect();
                self.unique_vector(out, g)
            }
            "sort" | "sort_desc" => {
                let mut v = self.vector(arg(0)?, g, &format!("{name}()"))?;
                if g.n == 1 {
                    // NaN sorts last both ways, as in Prometheus.
                    let key = |s: &Series| s.pts.first().map_or(f64::NAN, |p| p.1);
                    v.sort_by(|a, b| {
                        let (x, y) = (key(a), key(b));
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if name == "sort" => x.total_cmp(&y),
                            _ => y.total_cmp(&x),
                        }
                    });
                }
                Ok(Val::Vector(v))
            }
            "label_replace" => {
                let s = |i: usize| match arg(i)? {
                    Expr::StringLiteral(s) => Ok(unescape(&s.val)),
                    _ => Err(format!(
                        "label_replace() needs a string as argument {}",
                        i + 1
                    )),
                };
                let (dst, repl, src, re) = (s(1)?, s(2)?, s(3)?, s(4)?);
                let regex = regex::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|_| format!("invalid regular expression in label_replace(): {re}"))?;
                if !valid_label_name(&dst) {
                    return Err(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    ));
                }
                let v = self.vector(arg(0)?, g, "label_replace()")?;
                let out = v
                    .into_iter()
                    .map(|s| {
                        let value = label_value(&s.labels, &src);
                        let labels = match regex.captures(&value) {
                            Some(c) => {
                                let mut res = String::new();
                                c.expand(&repl, &mut res);
                                Rc::new(with_label(&s.labels, &dst, res))
                            }
                            None => s.labels,
                        };
                        Series { labels, pts: s.pts }
                    })
                    .collect();
                self.unique_vector(out, g)
            }
            "label_join" => {
                let s = |i: usize| match arg(i)? {
                    Expr::StringLiteral(s) => Ok(unescape(&s.val)),
                    _ => Err(format!("label_join() needs a string as argument {}", i + 1)),
                };
                let (dst, sep) = (s(1)?, s(2)?);
                let srcs: Vec<String> = (3..args.len()).map(s).collect::<Result<_, _>>()?;
                if !valid_label_name(&dst) {
                    return Err(format!(
                        "invalid destination label name in label_join(): {dst}"
                    ));
                }
                if let Some(bad) = srcs.iter().find(|s| !valid_label_name(s)) {
                    return Err(format!("invalid source label name in label_join(): {bad}"));
                }
                let v = self.vector(arg(0)?, g, "label_join()")?;
                let out = v
                    .into_iter()
                    .map(|s| {
                        let joined: Vec<String> =
                            srcs.iter().map(|n| label_value(&s.labels, n)).collect();
                        Series {
                            labels: Rc::new(with_label(&s.labels, &dst, joined.join(&sep))),
                            pts: s.pts,
                        }
                    })
                    .collect();
                self.unique_vector(out, g)
            }
            "histogram_quantile" => {
                let q = scalar_arg(0)?;
                let v = self.vector(arg(1)?, g, "histogram_quantile()")?;
                self.histogram_quantile(&q, v, g)
            }
            // Native histograms do not exist here: float series give nothing, as in 2.42.
            "histogram_count" | "histogram_sum" | "histogram_fraction" => {
                let last = args.len() - 1;
                self.vector(arg(last)?, g, &format!("{name}()"))?;
                Ok(Val::Vector(vec![]))
            }
            other => Err(format!("function {other}() is not supported")),
        }
    }

    /// A function of each series' window at every step.
    fn range_fn(
        &self,
        e: &Expr,
        g: Grid,
        keep_name: bool,
        f: &mut WindowFn<'_>,
    ) -> Result<Val, String> {
        let w = self.windows(e, g)?;
        let mut out = Vec::with_capacity(w.series.len());
        for (labels, pts) in &w.series {
            let mut vals = Vec::new();
            w.slide(pts, |i, win| {
                if let Some(v) = f(i, win, w.ends[i], w.range)? {
                    vals.push((i as u32, v));
                }
                Ok(())
            })?;
            if !vals.is_empty() {
                out.push(Series {
                    labels: if keep_name {
                        labels.clone()
                    } else {
                        drop_name(labels)
                    },
                    pts: vals,
                });
            }
        }
        check_unique(&out, false)?;
        self.count(out.iter().map(|s| s.pts.len()).sum())?;
        Ok(Val::Vector(out))
    }

    /// `max_over_time`/`min_over_time` with a monotonic queue per series: linear in the
    /// samples however long the window. NaN loses to any number (a window of NaNs gives
    /// NaN) and the earliest of equal values wins, as in Prometheus' scan.
    fn extreme_over_time(&self, e: &Expr, g: Grid, max: bool) -> Result<Val, String> {
        let w = self.windows(e, g)?;
        let better = |a: f64, b: f64| if max { a > b } else { a < b };
        let mut out = Vec::with_capacity(w.series.len());
        let mut queue: std::collections::VecDeque<usize> = Default::default();
        for (labels, pts) in &w.series {
            queue.clear();
            let (mut lo, mut hi) = (0, 0);
            let mut vals = Vec::new();
            for (i, &end) in w.ends.iter().enumerate() {
                while hi < pts.len() && pts[hi].0 <= end {
                    let v = pts[hi].1;
                    if !v.is_nan() {
                        while queue.back().is_some_and(|&b| better(v, pts[b].1)) {
                            queue.pop_back();
                        }
                        queue.push_back(hi);
                    }
                    hi += 1;
                }
                while lo < hi && pts[lo].0 < end - w.range {
                    if queue.front() == Some(&lo) {
                        queue.pop_front();
                    }
                    lo += 1;
                }
                if lo < hi {
                    let v = queue.front().map_or(f64::NAN, |&j| pts[j].1);
                    vals.push((i as u32, v));
                }
            }
            if !vals.is_empty() {
                out.push(Series {
                    labels: drop_name(labels),
                    pts: vals,
                });
            }
        }
        check_unique(&out, false)?;
        self.count(out.iter().map(|s| s.pts.len()).sum())?;
        Ok(Val::Vector(out))
    }

    /// A function of each value (the metric name dropped).
    fn map(&self, e: &Expr, g: Grid, f: impl Fn(f64) -> f64) -> Result<Val, String> {
        self.map_steps(e, g, |_, v| Some(f(v)))
    }

    /// A function of each value and its step; `None` drops the point.
    fn map_steps(
        &self,
        e: &Expr,
        g: Grid,
        f: impl Fn(usize, f64) -> Option<f64>,
    ) -> Result<Val, String> {
        let v = self.vector(e, g, "the function")?;
        let out = v
            .into_iter()
            .map(|s| Series {
                labels: drop_name(&s.labels),
                pts: s
                    .pts
                    .into_iter()
                    .filter_map(|(i, x)| f(i as usize, x).map(|y| (i, y)))
                    .collect(),
            })
            .collect();
        self.unique_vector(out, g)
    }

    /// A per-step node's result: Prometheus refuses two equal label sets at one step.
    pub(super) fn unique_vector(&self, out: Vec<Series>, _g: Grid) -> Result<Val, String> {
        check_unique(&out, true)?;
        Ok(Val::Vector(out))
    }

    fn histogram_quantile(&self, q: &[f64], v: Vec<Series>, g: Grid) -> Result<Val, String> {
        // Buckets group by every label but `le` (the name included); the result drops both.
        let mut groups: Vec<Lbl> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut of_series: Vec<Option<(usize, f64)>> = Vec::with_capacity(v.len());
        for s in &v {
            let le = s
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .and_then(|(_, x)| parse_go_float(x));
            of_series.push(le.map(|le| {
                let key: Labels = s
                    .labels
                    .iter()
                    .filter(|(k, _)| k != "le")
                    .cloned()
                    .collect();
                let n = index.len();
                let gi = *index.entry(key).or_insert(n);
                if gi == groups.len() {
                    groups.push(Rc::new(
                        s.labels
                            .iter()
                            .filter(|(k, _)| k != "le" && k != "__name__")
                            .cloned()
                            .collect(),
                    ));
                }
                (gi, le)
            }));
        }
        let mut out: Vec<Series> = groups
            .iter()
            .map(|l| Series {
                labels: l.clone(),
                pts: vec![],
            })
            .collect();
        let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
        for (i, step) in by_step(&v, g.n).into_iter().enumerate() {
            for (si, x) in step {
                if let Some((gi, le)) = of_series[si as usize] {
                    buckets[gi].push((le, x));
                }
            }
            for (gi, b) in buckets.iter_mut().enumerate() {
                if !b.is_empty() {
                    out[gi]
                        .pts
                        .push((i as u32, bucket_quantile(q[i], std::mem::take(b))));
                }
            }
        }
        out.retain(|s| !s.pts.is_empty());
        self.unique_vector(out, g)
    }
}

/// The expression inside any parentheses (Prometheus unwraps function arguments).
fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

/// Go's `strconv.ParseFloat` for the values `le` labels hold.
fn parse_go_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().trim_start_matches('+') {
        "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => s.parse::<f64>().ok(),
    }
}

/// The single series `absent()`/`absent_over_time()` return at the steps where nothing was
/// present: labels from the argument's equality matchers (a name matched twice is left out).
fn absent_series(arg: &Expr, present: &[bool]) -> Result<Vec<Series>, String> {
    let pts: Vec<(u32, f64)> = present
        .iter()
        .enumerate()
        .filter(|(_, p)| !**p)
        .map(|(i, _)| (i as u32, 1.0))
        .collect();
    if pts.is_empty() {
        return Ok(vec![]);
    }
    let vs = match arg {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(ms) => Some(&ms.vs),
        _ => None,
    };
    let mut labels: Labels = Vec::new();
    if let Some(vs) = vs {
        let mut dropped = Vec::new();
        for m in vector_matchers(vs)? {
            if m.name == "__name__" {
                continue;
            }
            match m.op {
                MatchOp::Eq(v) if !labels.iter().any(|(k, _)| *k == m.name) => {
                    if !v.is_empty() {
                        labels.push((m.name, v));
                    }
                }
                _ => dropped.push(m.name),
            }
        }
        labels.retain(|(k, _)| !dropped.contains(k));
        labels.sort();
    }
    Ok(vec![Series {
        labels: Rc::new(labels),
        pts,
    }])
}

/// The value of a label, empty when absent (PromQL's convention).
fn label_value(labels: &Labels, name: &str) -> String {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The labels with one set (an empty value removes it, PromQL's convention), kept sorted.
fn with_label(labels: &Labels, name: &str, value: String) -> Labels {
    let mut out: Labels = labels.iter().filter(|(k, _)| k != name).cloned().collect();
    if !value.is_empty() {
        let at = out.partition_point(|(k, _)| k.as_str() < name);
        out.insert(at, (name.to_string(), value));
    }
    out
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Kahan-Neumaier summation step, as Prometheus' `kahanSumInc`.
pub(super) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// `avg_over_time`: an incremental mean with compensation, infinities kept.
fn avg(w: &[(i64, f64)]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, v) in w {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

/// `stdvar_over_time`: Welford's method with compensated sums.
fn stdvar(w: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in w {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Prometheus' `quantile`: NaN sorts first, linear interpolation between neighbours.
pub(super) fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = vals.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    vals[lower as usize] * (1.0 - weight) + vals[upper as usize] * weight
}

/// `holt_winters`: double exponential smoothing; factors must lie strictly inside (0, 1).
fn holt_winters(w: &[(i64, f64)], sf: f64, tf: f64) -> Result<Option<f64>, String> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        ));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        ));
    }
    if w.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1, mut b) = (0.0, w[0].1, w[1].1 - w[0].1);
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.1;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}

/// Prometheus' `extrapolatedRate` over the window ending at `t` (ms): the change, corrected
/// for counter resets when `counter`, extrapolated towards the window's edges (not past the
/// zero point of a counter, and by at most half an average interval where the series starts
/// or ends).
pub fn extrapolated(
    points: &[(i64, f64)],
    t: i64,
    range_ms: i64,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let range_start = t - range_ms;
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        for w in points.windows(2) {
            if w[1].1 < w[0].1 {
                result += w[0].1;
            }
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let to_end = (t - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_step = sampled / (points.len() - 1) as f64;
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_step * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_step / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_step / 2.0
    };
    let mut factor = interval / sampled;
    if per_second {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate`/`idelta`: from the last two samples.
pub fn instant_rate(points: &[(i64, f64)], rate: bool) -> Option<f64> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let (prev, last) = (points[n - 2], points[n - 1]);
    let diff = if rate && last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    let ms = last.0 - prev.0;
    if ms == 0 {
        return None;
    }
    Some(if rate {
        diff / (ms as f64 / 1000.0)
    } else {
        diff
    })
}

/// Least-squares line through the points, x in seconds relative to `at` (ms): (slope per
/// second, value at `at`), with Prometheus' compensated sums and its constant-series rule.
pub fn linear_regression(points: &[(i64, f64)], at: i64) -> Option<(f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let init_y = points[0].1;
    let mut const_y = true;
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &(t, v)) in points.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - at) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return Some((f64::NAN, f64::NAN));
        }
        return Some((0.0, init_y));
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    Some((slope, sy / n - slope * sx / n))
}

/// Prometheus' `bucketQuantile`: buckets (upper bound, cumulative count), the +Inf bucket
/// required, equal bounds merged, counts made monotonic, linear interpolation in the bucket.
pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    let mut buckets = merged;
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let total = buckets[buckets.len() - 1].1;
    if total == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * total;
    let b = buckets[..buckets.len() - 1]
        .iter()
        .position(|x| x.1 >= rank)
        .unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}
