//! PromQL evaluation over the head, with Prometheus' semantics for what it supports: instant
//! and range vector selectors (5-minute lookback, staleness markers end a series, offset,
//! `@`), `rate`/`irate`/`increase`/`delta`/`idelta` (with Prometheus' extrapolation),
//! `deriv`/`predict_linear`, `resets`/`changes`, `histogram_quantile`, `label_replace`/
//! `label_join`, `absent`, `timestamp`, `clamp*`/`round`, `sort*`, `*_over_time`, math
//! functions, `time`/`vector`/`scalar`, aggregations (`sum`, `avg`, `min`,
//! `max`, `count`, `group`, `stddev`, `stdvar`, `topk`, `bottomk`) with `by`/`without`, and
//! binary operators (arithmetic, comparison with `bool`, `and`/`or`/`unless`) with
//! `on`/`ignoring` and `group_left`/`group_right`. Anything else is refused with an error
//! naming it. Parsing is promql-parser's; sans-IO: the data and the time come in.

use std::collections::{BTreeMap, HashMap};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self, Expr, LabelModifier, VectorMatchCardinality};

use super::Source;
use super::head::{Labels, MatchOp, Matcher};
use super::is_stale;

/// Series with their samples, as a selector fetches them.
type Fetched = Vec<(Labels, Vec<(i64, f64)>)>;

/// A function of a series' points in a window (and the window length) to one value.
type WindowFn<'f> = &'f dyn Fn(&[(i64, f64)], i64) -> Option<f64>;

/// Prometheus' default lookback for instant selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// A sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Elem {
    pub labels: Labels,
    pub v: f64,
}

/// A series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// The value of an expression at one time.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Elem>),
    Matrix(Vec<Range>),
}

/// Limits of one query.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub max_samples: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_samples: 50_000_000,
        }
    }
}

/// Unquotes a PromQL string's escapes (Go's rules: `\\`, `\"`, `\'`, `\n`, `\t`, `\r`,
/// `\a`, `\b`, `\f`, `\v`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`, `\ooo`). promql-parser hands
/// label matcher values over still escaped.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            out.push('\\');
            break;
        };
        let hex = |it: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<char> {
            let h: String = (0..n).filter_map(|_| it.next()).collect();
            u32::from_str_radix(&h, 16).ok().and_then(char::from_u32)
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            'x' => out.extend(hex(&mut it, 2)),
            'u' => out.extend(hex(&mut it, 4)),
            'U' => out.extend(hex(&mut it, 8)),
            '0'..='7' => {
                let mut o = String::from(e);
                while o.len() < 3 {
                    match it.peek() {
                        Some(d @ '0'..='7') => {
                            o.push(*d);
                            it.next();
                        }
                        _ => break,
                    }
                }
                out.extend(u32::from_str_radix(&o, 8).ok().and_then(char::from_u32));
            }
            other => out.push(other),
        }
    }
    out
}

/// Our matchers for a vector selector: values unescaped, regexes anchored as `^(?:…)$`
/// (the parser's own `^…$` breaks alternations such as `a|b`).
pub fn vector_matchers(vs: &parser::VectorSelector) -> Result<Vec<Matcher>, String> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err("the `or` form of label matchers is not supported".into());
    }
    let mut out = Vec::new();
    if let Some(n) = &vs.name {
        out.push(Matcher::eq("__name__", n));
    }
    for m in &vs.matchers.matchers {
        let value = unescape(&m.value);
        out.push(match &m.op {
            PMatchOp::Equal => Matcher::eq(&m.name, &value),
            PMatchOp::NotEqual => Matcher {
                name: m.name.clone(),
                op: MatchOp::Neq(value),
            },
            PMatchOp::Re(_) => Matcher::re(&m.name, &value, false)
                .map_err(|e| format!("bad regex {value:?}: {e}"))?,
            PMatchOp::NotRe(_) => Matcher::re(&m.name, &value, true)
                .map_err(|e| format!("bad regex {value:?}: {e}"))?,
        });
    }
    Ok(out)
}

/// Parses a query, with the parser's message (it names the position) on error.
pub fn parse(q: &str) -> Result<Expr, String> {
    parser::parse(q).map_err(|e| format!("parse error: {e}"))
}

/// Evaluates at one time (milliseconds).
pub struct Engine<'a> {
    head: &'a dyn Source,
    limits: QueryLimits,
    touched: std::cell::Cell<usize>,
    /// For range queries: the evaluation span, and each selector's samples over all of it,
    /// fetched (and decoded) once instead of at every step.
    span: Option<(i64, i64)>,
    cache: std::cell::RefCell<HashMap<String, std::rc::Rc<Fetched>>>,
}

fn drop_name(mut l: Labels) -> Labels {
    l.retain(|(n, _)| n != "__name__");
    l
}

fn offset_ms(o: &Option<parser::Offset>) -> i64 {
    match o {
        Some(parser::Offset::Pos(d)) => d.as_millis() as i64,
        Some(parser::Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

impl<'a> Engine<'a> {
    pub fn new(head: &'a dyn Source, limits: QueryLimits) -> Self {
        Engine {
            head,
            limits,
            touched: std::cell::Cell::new(0),
            span: None,
            cache: Default::default(),
        }
    }

    /// An engine for evaluations at times within `[start, end]` (range queries).
    pub fn for_range(head: &'a dyn Source, limits: QueryLimits, start: i64, end: i64) -> Self {
        Engine {
            span: Some((start, end)),
            ..Self::new(head, limits)
        }
    }

    /// Samples of the matching series in `[ts - width + 1, ts]`. In a range query each
    /// selector is fetched once for the whole span and cut per step.
    fn window(
        &self,
        ms: &[Matcher],
        key: String,
        fixed_at: bool,
        offset: i64,
        width: i64,
        ts: i64,
    ) -> Result<Fetched, String> {
        let Some((start, end)) = self.span.filter(|_| !fixed_at) else {
            let got = self.head.select(ms, ts - width + 1, ts);
            self.count(got.iter().map(|(_, p)| p.len()).sum())?;
            return Ok(got);
        };
        let key = format!("{key}|{offset}|{width}");
        let cached = self.cache.borrow().get(&key).cloned();
        let all = match cached {
            Some(a) => a,
            None => {
                let got = self
                    .head
                    .select(ms, start - offset - width + 1, end - offset);
                self.count(got.iter().map(|(_, p)| p.len()).sum())?;
                let rc = std::rc::Rc::new(got);
                self.cache.borrow_mut().insert(key, rc.clone());
                rc
            }
        };
        let (lo, hi) = (ts - width + 1, ts);
        Ok(all
            .iter()
            .filter_map(|(l, pts)| {
                let a = pts.partition_point(|(t, _)| *t < lo);
                let b = pts.partition_point(|(t, _)| *t <= hi);
                (a < b).then(|| (l.clone(), pts[a..b].to_vec()))
            })
            .collect())
    }

    fn matchers(vs: &parser::VectorSelector) -> Result<Vec<Matcher>, String> {
        vector_matchers(vs)
    }

    fn count(&self, n: usize) -> Result<(), String> {
        let t = self.touched.get() + n;
        self.touched.set(t);
        if t > self.limits.max_samples {
            return Err(format!(
                "the query would touch more than {} samples: narrow the selectors or the time range",
                self.limits.max_samples
            ));
        }
        Ok(())
    }

    fn at_time(&self, at: &Option<parser::AtModifier>, t: i64) -> i64 {
        match at {
            Some(parser::AtModifier::At(st)) => st
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(t),
            _ => t,
        }
    }

    fn instant(&self, vs: &parser::VectorSelector, t: i64) -> Result<Vec<Elem>, String> {
        let offset = offset_ms(&vs.offset);
        let ts = self.at_time(&vs.at, t) - offset;
        let ms = Self::matchers(vs)?;
        let mut out = Vec::new();
        for (labels, pts) in self.window(
            &ms,
            format!("{ms:?}"),
            vs.at.is_some(),
            offset,
            LOOKBACK_MS,
            ts,
        )? {
            // The newest sample in the lookback window; a staleness marker hides the series.
            if let Some((_, v)) = pts.last()
                && !is_stale(*v)
            {
                out.push(Elem { labels, v: *v });
            }
        }
        Ok(out)
    }

    fn matrix(&self, ms: &parser::MatrixSelector, t: i64) -> Result<Vec<Range>, String> {
        let offset = offset_ms(&ms.vs.offset);
        let ts = self.at_time(&ms.vs.at, t) - offset;
        let range = ms.range.as_millis() as i64;
        let m = Self::matchers(&ms.vs)?;
        let mut out = Vec::new();
        for (labels, pts) in
            self.window(&m, format!("{m:?}"), ms.vs.at.is_some(), offset, range, ts)?
        {
            let points: Vec<(i64, f64)> = pts.into_iter().filter(|(_, v)| !is_stale(*v)).collect();
            if !points.is_empty() {
                out.push(Range { labels, points });
            }
        }
        Ok(out)
    }

    /// Evaluates `e` at `t` (milliseconds since the epoch).
    pub fn eval(&self, e: &Expr, t: i64) -> Result<Value, String> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => Ok(Value::Vector(
                    v.into_iter()
                        .map(|e| Elem {
                            labels: drop_name(e.labels),
                            v: -e.v,
                        })
                        .collect(),
                )),
                _ => Err("unary minus needs a scalar or an instant vector".into()),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant(vs, t)?)),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.matrix(ms, t)?)),
            Expr::Call(c) => self.call(c, t),
            Expr::Aggregate(a) => self.aggregate(a, t),
            Expr::Binary(b) => self.binary(b, t),
            Expr::Subquery(_) => Err("subqueries are not supported yet".into()),
            Expr::Extension(_) => Err("extension expressions are not supported".into()),
        }
    }

    fn call(&self, c: &parser::Call, t: i64) -> Result<Value, String> {
        let name = c.func.name;
        let args = &c.args.args;
        let range_arg = |i: usize| -> Result<(Vec<Range>, i64), String> {
            match args.get(i).map(|a| a.as_ref()) {
                Some(Expr::MatrixSelector(ms)) => {
                    Ok((self.matrix(ms, t)?, ms.range.as_millis() as i64))
                }
                _ => Err(format!("{name}() needs a range vector like metric[5m]")),
            }
        };
        let per_series = |f: WindowFn| -> Result<Value, String> {
            let (m, range) = range_arg(0)?;
            Ok(Value::Vector(
                m.into_iter()
                    .filter_map(|r| {
                        f(&r.points, range).map(|v| Elem {
                            labels: drop_name(r.labels),
                            v,
                        })
                    })
                    .collect(),
            ))
        };
        let math = |f: fn(f64) -> f64| -> Result<Value, String> {
            match self.eval(args.first().ok_or("missing argument")?, t)? {
                Value::Vector(v) => Ok(Value::Vector(
                    v.into_iter()
                        .map(|e| Elem {
                            labels: drop_name(e.labels),
                            v: f(e.v),
                        })
                        .collect(),
                )),
                _ => Err(format!("{name}() needs an instant vector")),
            }
        };
        let t_secs = t as f64 / 1000.0;
        match name {
            "rate" => per_series(&|p, r| extrapolated(p, t, r, true, true)),
            "increase" => per_series(&|p, r| extrapolated(p, t, r, true, false)),
            "delta" => per_series(&|p, r| extrapolated(p, t, r, false, false)),
            "irate" => per_series(&|p, _| instant_rate(p, true)),
            "idelta" => per_series(&|p, _| instant_rate(p, false)),
            "avg_over_time" => {
                per_series(&|p, _| Some(p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64))
            }
            "sum_over_time" => per_series(&|p, _| Some(p.iter().map(|x| x.1).sum())),
            "min_over_time" => per_series(&|p, _| p.iter().map(|x| x.1).reduce(f64::min)),
            "max_over_time" => per_series(&|p, _| p.iter().map(|x| x.1).reduce(f64::max)),
            "count_over_time" => per_series(&|p, _| Some(p.len() as f64)),
            "last_over_time" => {
                // Keeps the metric name, as Prometheus does.
                let (m, _) = range_arg(0)?;
                Ok(Value::Vector(
                    m.into_iter()
                        .filter_map(|r| {
                            r.points.last().map(|x| Elem {
                                labels: r.labels.clone(),
                                v: x.1,
                            })
                        })
                        .collect(),
                ))
            }
            "abs" => math(f64::abs),
            "ceil" => math(f64::ceil),
            "floor" => math(f64::floor),
            "exp" => math(f64::exp),
            "ln" => math(f64::ln),
            "log2" => math(f64::log2),
            "log10" => math(f64::log10),
            "sqrt" => math(f64::sqrt),
            "time" => Ok(Value::Scalar(t_secs)),
            "vector" => match self.eval(args.first().ok_or("missing argument")?, t)? {
                Value::Scalar(v) => Ok(Value::Vector(vec![Elem { labels: vec![], v }])),
                _ => Err("vector() needs a scalar".into()),
            },
            "scalar" => match self.eval(args.first().ok_or("missing argument")?, t)? {
                Value::Vector(v) if v.len() == 1 => Ok(Value::Scalar(v[0].v)),
                Value::Vector(_) => Ok(Value::Scalar(f64::NAN)),
                _ => Err("scalar() needs an instant vector".into()),
            },
            "resets" => {
                per_series(&|p, _| Some(p.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64))
            }
            "changes" => per_series(&|p, _| {
                Some(
                    p.windows(2)
                        .filter(|w| w[1].1 != w[0].1 && !(w[0].1.is_nan() && w[1].1.is_nan()))
                        .count() as f64,
                )
            }),
            "deriv" => per_series(&|p, _| {
                linear_regression(p, p.first().map(|x| x.0).unwrap_or(0)).map(|(slope, _)| slope)
            }),
            "predict_linear" => {
                let secs = self.scalar_arg(args, 1, t, name)?;
                per_series(&|p, _| {
                    linear_regression(p, t).map(|(slope, intercept)| intercept + slope * secs)
                })
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let (lo, hi) = match name {
                    "clamp" => (
                        self.scalar_arg(args, 1, t, name)?,
                        self.scalar_arg(args, 2, t, name)?,
                    ),
                    "clamp_min" => (self.scalar_arg(args, 1, t, name)?, f64::INFINITY),
                    _ => (f64::NEG_INFINITY, self.scalar_arg(args, 1, t, name)?),
                };
                match self.eval(args.first().ok_or("missing argument")?, t)? {
                    // Prometheus returns nothing when min > max.
                    Value::Vector(_) if lo > hi => Ok(Value::Vector(vec![])),
                    Value::Vector(v) => Ok(Value::Vector(
                        v.into_iter()
                            .map(|e| Elem {
                                labels: drop_name(e.labels),
                                v: e.v.max(lo).min(hi),
                            })
                            .collect(),
                    )),
                    _ => Err(format!("{name}() needs an instant vector")),
                }
            }
            "round" => {
                let to = if args.len() > 1 {
                    self.scalar_arg(args, 1, t, name)?
                } else {
                    1.0
                };
                match self.eval(args.first().ok_or("missing argument")?, t)? {
                    // Prometheus rounds halves up: floor(v / to + 0.5) * to.
                    Value::Vector(v) => Ok(Value::Vector(
                        v.into_iter()
                            .map(|e| Elem {
                                labels: drop_name(e.labels),
                                v: (e.v / to + 0.5).floor() * to,
                            })
                            .collect(),
                    )),
                    _ => Err("round() needs an instant vector".into()),
                }
            }
            "absent" => {
                let arg = args.first().ok_or("missing argument")?;
                match self.eval(arg, t)? {
                    Value::Vector(v) if !v.is_empty() => Ok(Value::Vector(vec![])),
                    Value::Vector(_) => {
                        // The labels of equality matchers become the result's labels.
                        let mut labels: Labels = match arg.as_ref() {
                            Expr::VectorSelector(vs) => vector_matchers(vs)?
                                .into_iter()
                                .filter_map(|m| match m.op {
                                    MatchOp::Eq(v) if m.name != "__name__" => Some((m.name, v)),
                                    _ => None,
                                })
                                .collect(),
                            _ => vec![],
                        };
                        labels.sort();
                        Ok(Value::Vector(vec![Elem { labels, v: 1.0 }]))
                    }
                    _ => Err("absent() needs an instant vector".into()),
                }
            }
            "label_replace" => {
                let dst = self.string_arg(args, 1, t, name)?;
                let repl = self.string_arg(args, 2, t, name)?;
                let src = self.string_arg(args, 3, t, name)?;
                let re =
                    regex::Regex::new(&format!("^(?:{})$", self.string_arg(args, 4, t, name)?))
                        .map_err(|e| format!("label_replace(): bad regex: {e}"))?;
                if !super::exposition::valid_label_name(&dst) {
                    return Err(format!(
                        "label_replace(): invalid destination label name {dst:?}"
                    ));
                }
                match self.eval(args.first().ok_or("missing argument")?, t)? {
                    Value::Vector(v) => Ok(Value::Vector(
                        v.into_iter()
                            .map(|mut e| {
                                let value = label_value(&e.labels, &src);
                                if let Some(c) = re.captures(&value) {
                                    let mut out = String::new();
                                    c.expand(&repl, &mut out);
                                    set_label(&mut e.labels, &dst, out);
                                }
                                e
                            })
                            .collect(),
                    )),
                    _ => Err("label_replace() needs an instant vector".into()),
                }
            }
            "label_join" => {
                let dst = self.string_arg(args, 1, t, name)?;
                let sep = self.string_arg(args, 2, t, name)?;
                let srcs: Vec<String> = (3..args.len())
                    .map(|i| self.string_arg(args, i, t, name))
                    .collect::<Result<_, _>>()?;
                match self.eval(args.first().ok_or("missing argument")?, t)? {
                    Value::Vector(v) => Ok(Value::Vector(
                        v.into_iter()
                            .map(|mut e| {
                                let joined: Vec<String> =
                                    srcs.iter().map(|s| label_value(&e.labels, s)).collect();
                                set_label(&mut e.labels, &dst, joined.join(&sep));
                                e
                            })
                            .collect(),
                    )),
                    _ => Err("label_join() needs an instant vector".into()),
                }
            }
            "histogram_quantile" => {
                let q = self.scalar_arg(args, 0, t, name)?;
                let Value::Vector(v) = self.eval(args.get(1).ok_or("missing argument")?, t)? else {
                    return Err("histogram_quantile() needs an instant vector of buckets".into());
                };
                let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
                for e in v {
                    let Some(le) = e
                        .labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .and_then(|(_, v)| super::exposition::parse_value(v))
                    else {
                        continue;
                    };
                    let key: Labels = drop_name(e.labels)
                        .into_iter()
                        .filter(|(k, _)| k != "le")
                        .collect();
                    groups.entry(key).or_default().push((le, e.v));
                }
                Ok(Value::Vector(
                    groups
                        .into_iter()
                        .map(|(labels, b)| Elem {
                            labels,
                            v: bucket_quantile(q, b),
                        })
                        .collect(),
                ))
            }
            "sort" | "sort_desc" => match self.eval(args.first().ok_or("missing argument")?, t)? {
                Value::Vector(mut v) => {
                    v.sort_by(|a, b| {
                        if name == "sort" {
                            a.v.total_cmp(&b.v)
                        } else {
                            b.v.total_cmp(&a.v)
                        }
                    });
                    Ok(Value::Vector(v))
                }
                _ => Err(format!("{name}() needs an instant vector")),
            },
            "timestamp" => match args.first().map(|a| a.as_ref()) {
                // The time of the sample each series' value comes from.
                Some(Expr::VectorSelector(vs)) => {
                    let offset = offset_ms(&vs.offset);
                    let ts = self.at_time(&vs.at, t) - offset;
                    let ms = Self::matchers(vs)?;
                    Ok(Value::Vector(
                        self.window(
                            &ms,
                            format!("{ms:?}"),
                            vs.at.is_some(),
                            offset,
                            LOOKBACK_MS,
                            ts,
                        )?
                        .into_iter()
                        .filter_map(|(l, p)| {
                            p.last().filter(|x| !is_stale(x.1)).map(|x| Elem {
                                labels: drop_name(l),
                                v: x.0 as f64 / 1000.0,
                            })
                        })
                        .collect(),
                    ))
                }
                _ => Err("timestamp() is supported on a plain selector".into()),
            },
            other => Err(format!("function {other}() is not supported yet")),
        }
    }

    fn scalar_arg(&self, args: &[Box<Expr>], i: usize, t: i64, f: &str) -> Result<f64, String> {
        match args.get(i).map(|a| self.eval(a, t)) {
            Some(Ok(Value::Scalar(v))) => Ok(v),
            _ => Err(format!("{f}() needs a number as argument {}", i + 1)),
        }
    }

    fn string_arg(&self, args: &[Box<Expr>], i: usize, t: i64, f: &str) -> Result<String, String> {
        match args.get(i).map(|a| self.eval(a, t)) {
            Some(Ok(Value::String(s))) => Ok(unescape(&s)),
            _ => Err(format!("{f}() needs a string as argument {}", i + 1)),
        }
    }

    fn aggregate(&self, a: &parser::AggregateExpr, t: i64) -> Result<Value, String> {
        let op = a.op.to_string();
        let Value::Vector(input) = self.eval(&a.expr, t)? else {
            return Err(format!("{op}() needs an instant vector"));
        };
        let key = |l: &Labels| -> Labels {
            match &a.modifier {
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
        };
        if op == "topk" || op == "bottomk" {
            let k = match a.param.as_deref().map(|p| self.eval(p, t)) {
                Some(Ok(Value::Scalar(k))) => k.max(0.0) as usize,
                _ => return Err(format!("{op}() needs a number parameter")),
            };
            let mut groups: BTreeMap<Labels, Vec<Elem>> = BTreeMap::new();
            for e in input {
                groups.entry(key(&e.labels)).or_default().push(e);
            }
            let mut out = Vec::new();
            for (_, mut g) in groups {
                g.sort_by(|x, y| {
                    if op == "topk" {
                        y.v.total_cmp(&x.v)
                    } else {
                        x.v.total_cmp(&y.v)
                    }
                });
                out.extend(g.into_iter().take(k));
            }
            return Ok(Value::Vector(out));
        }
        let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
        for e in &input {
            groups.entry(key(&e.labels)).or_default().push(e.v);
        }
        let mut out = Vec::new();
        for (labels, vals) in groups {
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let v = match op.as_str() {
                "sum" => vals.iter().sum(),
                "avg" => mean,
                "min" => vals
                    .iter()
                    .copied()
                    .reduce(|a, b| if b < a || a.is_nan() { b } else { a })
                    .unwrap_or(f64::NAN),
                "max" => vals
                    .iter()
                    .copied()
                    .reduce(|a, b| if b > a || a.is_nan() { b } else { a })
                    .unwrap_or(f64::NAN),
                "count" => n,
                "group" => 1.0,
                "stddev" => var.sqrt(),
                "stdvar" => var,
                other => return Err(format!("aggregation {other}() is not supported yet")),
            };
            out.push(Elem { labels, v });
        }
        Ok(Value::Vector(out))
    }

    fn binary(&self, b: &parser::BinaryExpr, t: i64) -> Result<Value, String> {
        let op = b.op.to_string();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let comparison = b.op.is_comparison_operator();
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar(x), Value::Scalar(y)) => {
                let v = apply(&op, x, y)?;
                Ok(Value::Scalar(if comparison {
                    if v.is_some() { 1.0 } else { 0.0 }
                } else {
                    v.unwrap_or(f64::NAN)
                }))
            }
            (Value::Vector(v), Value::Scalar(s)) => Ok(Value::Vector(vec_scalar(
                v,
                s,
                &op,
                comparison,
                return_bool,
                false,
            )?)),
            (Value::Scalar(s), Value::Vector(v)) => Ok(Value::Vector(vec_scalar(
                v,
                s,
                &op,
                comparison,
                return_bool,
                true,
            )?)),
            (Value::Vector(l), Value::Vector(r)) => Ok(Value::Vector(self.vec_vec(
                b,
                &op,
                l,
                r,
                comparison,
                return_bool,
            )?)),
            _ => Err(format!("operator {op} needs scalars or instant vectors")),
        }
    }

    fn vec_vec(
        &self,
        b: &parser::BinaryExpr,
        op: &str,
        l: Vec<Elem>,
        r: Vec<Elem>,
        comparison: bool,
        return_bool: bool,
    ) -> Result<Vec<Elem>, String> {
        let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
        let sig = |labels: &Labels| -> Labels {
            match &matching {
                Some(LabelModifier::Include(on)) => labels
                    .iter()
                    .filter(|(n, _)| on.labels.contains(n))
                    .cloned()
                    .collect(),
                Some(LabelModifier::Exclude(ign)) => labels
                    .iter()
                    .filter(|(n, _)| n != "__name__" && !ign.labels.contains(n))
                    .cloned()
                    .collect(),
                None => drop_name(labels.clone()),
            }
        };
        if b.op.is_set_operator() {
            let rsigs: HashMap<Labels, ()> = r.iter().map(|e| (sig(&e.labels), ())).collect();
            return Ok(match op {
                "and" => l
                    .into_iter()
                    .filter(|e| rsigs.contains_key(&sig(&e.labels)))
                    .collect(),
                "unless" => l
                    .into_iter()
                    .filter(|e| !rsigs.contains_key(&sig(&e.labels)))
                    .collect(),
                _ => {
                    let lsigs: HashMap<Labels, ()> =
                        l.iter().map(|e| (sig(&e.labels), ())).collect();
                    let mut out = l;
                    out.extend(
                        r.into_iter()
                            .filter(|e| !lsigs.contains_key(&sig(&e.labels))),
                    );
                    out
                }
            });
        }
        let card = b
            .modifier
            .as_ref()
            .map(|m| m.card.clone())
            .unwrap_or(VectorMatchCardinality::OneToOne);
        let (many, one, swapped, include) = match &card {
            VectorMatchCardinality::OneToMany(inc) => (r, l, true, inc.labels.clone()),
            VectorMatchCardinality::ManyToOne(inc) => (l, r, false, inc.labels.clone()),
            _ => (l, r, false, vec![]),
        };
        let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
        let mut ones: HashMap<Labels, &Elem> = HashMap::new();
        for e in &one {
            if ones.insert(sig(&e.labels), e).is_some() {
                return Err(format!(
                    "found duplicate series for the match group {:?} on the {} side of {op}: add on(...)/ignoring(...) or group_left/group_right",
                    sig(&e.labels),
                    if swapped { "left" } else { "right" }
                ));
            }
        }
        let mut seen: HashMap<Labels, ()> = HashMap::new();
        let mut out = Vec::new();
        for e in &many {
            let s = sig(&e.labels);
            let Some(o) = ones.get(&s) else { continue };
            if one_to_one && seen.insert(s.clone(), ()).is_some() {
                return Err(format!(
                    "many-to-one matching for {op}: use group_left or group_right"
                ));
            }
            let (x, y) = if swapped { (o.v, e.v) } else { (e.v, o.v) };
            let r = apply(op, x, y)?;
            let mut labels = if one_to_one {
                if comparison && !return_bool {
                    e.labels.clone()
                } else {
                    s.clone()
                }
            } else {
                e.labels.clone()
            };
            if !one_to_one {
                for n in &include {
                    labels.retain(|(k, _)| k != n);
                    if let Some(v) = o.labels.iter().find(|(k, _)| k == n) {
                        labels.push(v.clone());
                    }
                }
                labels.sort();
            }
            if !comparison || return_bool {
                labels = drop_name(labels);
            }
            match (comparison, return_bool, r) {
                (true, false, None) => {}
                (true, false, Some(_)) => out.push(Elem {
                    labels,
                    v: if swapped { y } else { x },
                }),
                (true, true, r) => out.push(Elem {
                    labels,
                    v: if r.is_some() { 1.0 } else { 0.0 },
                }),
                (false, _, r) => out.push(Elem {
                    labels,
                    v: r.unwrap_or(f64::NAN),
                }),
            }
        }
        Ok(out)
    }
}

/// Applies an arithmetic operator (`Some(result)`) or a comparison (`Some(lhs)` when true,
/// `None` when false).
fn apply(op: &str, x: f64, y: f64) -> Result<Option<f64>, String> {
    Ok(match op {
        "+" => Some(x + y),
        "-" => Some(x - y),
        "*" => Some(x * y),
        "/" => Some(x / y),
        "%" => Some(x % y),
        "^" => Some(x.powf(y)),
        "atan2" => Some(x.atan2(y)),
        "==" => (x == y).then_some(x),
        "!=" => (x != y).then_some(x),
        ">" => (x > y).then_some(x),
        "<" => (x < y).then_some(x),
        ">=" => (x >= y).then_some(x),
        "<=" => (x <= y).then_some(x),
        other => return Err(format!("operator {other} is not supported")),
    })
}

fn vec_scalar(
    v: Vec<Elem>,
    s: f64,
    op: &str,
    comparison: bool,
    return_bool: bool,
    scalar_left: bool,
) -> Result<Vec<Elem>, String> {
    let mut out = Vec::new();
    for e in v {
        let (x, y) = if scalar_left { (s, e.v) } else { (e.v, s) };
        let r = apply(op, x, y)?;
        if comparison && !return_bool {
            if r.is_some() {
                out.push(Elem {
                    labels: e.labels,
                    v: e.v,
                });
            }
        } else if comparison {
            out.push(Elem {
                labels: drop_name(e.labels),
                v: if r.is_some() { 1.0 } else { 0.0 },
            });
        } else {
            out.push(Elem {
                labels: drop_name(e.labels),
                v: r.unwrap_or(f64::NAN),
            });
        }
    }
    Ok(out)
}

/// Prometheus' `extrapolatedRate`: the change over the window, corrected for counter resets
/// when `counter`, extrapolated towards the window's edges (not past the zero point of a
/// counter, and by at most half an average interval where the series starts or ends).
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
    result *= interval / sampled;
    if per_second {
        result /= range_ms as f64 / 1000.0;
    }
    Some(result)
}

/// The value of a label, empty when absent (PromQL's convention).
fn label_value(labels: &Labels, name: &str) -> String {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Sets a label, keeping the set sorted; an empty value removes it (PromQL's convention).
fn set_label(labels: &mut Labels, name: &str, value: String) {
    labels.retain(|(k, _)| k != name);
    if !value.is_empty() {
        labels.push((name.to_string(), value));
    }
    labels.sort();
}

/// Least-squares line through the points, with x in seconds relative to `at` (ms): returns
/// (slope per second, value at `at`), as Prometheus' `linearRegression`.
pub fn linear_regression(points: &[(i64, f64)], at: i64) -> Option<(f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sxx) = (0.0, 0.0, 0.0, 0.0);
    for (t, v) in points {
        let x = (*t - at) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sxx += x * x;
    }
    let cov = sxy - sx * sy / n;
    let var = sxx - sx * sx / n;
    let slope = cov / var;
    Some((slope, sy / n - slope * sx / n))
}

/// Prometheus' `bucketQuantile`: buckets (upper bound, cumulative count) sorted by bound, the
/// +Inf bucket required, counts made monotonic, linear interpolation inside the bucket.
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
    if buckets.len() < 2 || buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    for i in 1..buckets.len() {
        if buckets[i].1 < buckets[i - 1].1 {
            buckets[i].1 = buckets[i - 1].1;
        }
    }
    let total = buckets[buckets.len() - 1].1;
    if total == 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let b = buckets
        .iter()
        .position(|x| x.1 >= rank)
        .unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (start, count_before) = if b == 0 {
        (0.0, 0.0)
    } else {
        (buckets[b - 1].0, buckets[b - 1].1)
    };
    let (end, count) = (buckets[b].0, buckets[b].1 - count_before);
    start + (end - start) * ((rank - count_before) / count)
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
    if !rate {
        return Some(diff);
    }
    let secs = (last.0 - prev.0) as f64 / 1000.0;
    (secs > 0.0).then(|| diff / secs)
}

/// Evaluates over a range: one evaluation per step, collected into series.
pub fn eval_range(
    head: &dyn Source,
    e: &Expr,
    start: i64,
    end: i64,
    step: i64,
    limits: QueryLimits,
) -> Result<Value, String> {
    if step <= 0 {
        return Err("step must be positive".into());
    }
    if (end - start) / step > 11_000 {
        return Err(
            "exceeded maximum resolution of 11,000 points per series: raise the step".into(),
        );
    }
    let engine = Engine::for_range(head, limits, start, end);
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut t = start;
    while t <= end {
        match engine.eval(e, t)? {
            Value::Scalar(v) => series.entry(vec![]).or_default().push((t, v)),
            Value::Vector(v) => {
                for el in v {
                    series.entry(el.labels).or_default().push((t, el.v));
                }
            }
            Value::Matrix(_) => return Err(
                "a range query needs an instant vector or scalar expression, not a range vector"
                    .into(),
            ),
            Value::String(_) => return Err("a range query cannot return a string".into()),
        }
        t += step;
    }
    Ok(Value::Matrix(
        series
            .into_iter()
            .map(|(labels, points)| Range { labels, points })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::head::Head;

    fn head() -> Head {
        let mut h = Head::new(100);
        // A counter that rises 10 per 15 s with a reset, a gauge per instance, a stale series.
        type Gen<'a> = (&'a [(&'a str, &'a str)], &'a dyn Fn(i64) -> f64);
        let series: &[Gen] = &[
            (
                &[("__name__", "req_total"), ("job", "api"), ("instance", "a")],
                &|i| {
                    if i < 40 {
                        i as f64 * 10.0
                    } else {
                        (i - 40) as f64 * 10.0
                    }
                },
            ),
            (
                &[("__name__", "req_total"), ("job", "api"), ("instance", "b")],
                &|i| i as f64 * 20.0,
            ),
            (
                &[("__name__", "temp"), ("job", "api"), ("instance", "a")],
                &|_| 20.0,
            ),
            (
                &[("__name__", "temp"), ("job", "api"), ("instance", "b")],
                &|_| 30.0,
            ),
        ];
        for (labels, f) in series {
            let id = h
                .series_id(
                    labels
                        .iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect(),
                )
                .unwrap();
            for i in 0..=80 {
                h.append(id, i * 15_000, f(i)).unwrap();
            }
        }
        let gone = h
            .series_id(vec![("__name__".into(), "gone".into())])
            .unwrap();
        h.append(gone, 0, 1.0).unwrap();
        h.append(gone, 15_000, f64::from_bits(super::super::STALE_NAN))
            .unwrap();
        h
    }

    fn eval(q: &str, t_secs: i64) -> Result<Value, String> {
        let h = head();
        Engine::new(&h, QueryLimits::default()).eval(&parse(q)?, t_secs * 1000)
    }

    fn vector(q: &str, t_secs: i64) -> Vec<(String, f64)> {
        match eval(q, t_secs).unwrap() {
            Value::Vector(v) => v
                .into_iter()
                .map(|e| {
                    (
                        e.labels
                            .iter()
                            .map(|(a, b)| format!("{a}={b}"))
                            .collect::<Vec<_>>()
                            .join(","),
                        e.v,
                    )
                })
                .collect(),
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn selectors_lookback_and_staleness() {
        assert_eq!(
            vector("temp", 1200),
            vec![
                ("__name__=temp,instance=a,job=api".into(), 20.0),
                ("__name__=temp,instance=b,job=api".into(), 30.0)
            ]
        );
        // The last sample is at 1200 s; the 5-minute lookback still finds it at 1499 s, not at 1500 s.
        assert_eq!(vector("temp{instance=\"a\"}", 1499).len(), 1);
        assert_eq!(vector("temp{instance=\"a\"}", 1500).len(), 0);
        assert_eq!(vector("temp offset 10m", 1800).len(), 2);
        assert_eq!(vector("gone", 10).len(), 1);
        assert_eq!(
            vector("gone", 20).len(),
            0,
            "a staleness marker ends the series at once"
        );
        assert_eq!(
            vector("temp{instance=~\"a|b\"}", 600).len(),
            2,
            "anchored alternation"
        );
        assert_eq!(vector("temp{instance=~\"a.\"}", 600).len(), 0);
    }

    #[test]
    fn rate_with_reset_and_extrapolation() {
        // b: +20 per 15 s = 1.333…/s, sampled exactly on the window edges.
        let v = vector("rate(req_total{instance=\"b\"}[5m])", 600);
        assert_eq!(v[0].0, "instance=b,job=api", "rate drops the metric name");
        assert!((v[0].1 - 20.0 / 15.0).abs() < 1e-9, "{v:?}");
        // a resets from 390 to 0 at 600 s. Over (450 s, 750 s] the 20 samples rise 10 per step
        // except across the reset, where Prometheus counts the new value (0): 18 × 10 = 180
        // over 285 s sampled, extrapolated by 15 s at the start (under 1.1 steps away) and 0
        // at the end: 180 × 300/285 per 300 s.
        let v = vector("rate(req_total{instance=\"a\"}[5m])", 750);
        assert!((v[0].1 - 180.0 / 285.0).abs() < 1e-9, "{v:?}");
        let v = vector("increase(req_total{instance=\"b\"}[1m])", 600);
        assert!((v[0].1 - 80.0).abs() < 1e-9, "{v:?}");
        assert!(
            (vector("irate(req_total[1m])", 600)
                .iter()
                .find(|x| x.0.contains("=b"))
                .unwrap()
                .1
                - 20.0 / 15.0)
                .abs()
                < 1e-9
        );
        // Extrapolation: 15 s to the window start is under 1.1 steps, so it is bridged (and the
        // counter's zero point is exactly there); 30 s to the end is not, so only half a step
        // (7.5 s) is added: 10 × (15 + 15 + 7.5) / 15 = 25.
        let pts = [(15_000, 10.0), (30_000, 20.0)];
        let r = extrapolated(&pts, 60_000, 60_000, true, false).unwrap();
        assert!((r - 25.0).abs() < 1e-9, "{r}");
        // A counter starting high: extrapolation to the start stops where it would reach 0.
        let pts = [(15_000, 1.0), (30_000, 11.0)];
        let r = extrapolated(&pts, 60_000, 60_000, true, false).unwrap();
        assert!((r - 10.0 * (15.0 + 1.5 + 7.5) / 15.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn aggregations_and_binary_operators() {
        assert_eq!(vector("sum(temp)", 600), vec![(String::new(), 50.0)]);
        assert_eq!(
            vector("avg by (job) (temp)", 600),
            vec![("job=api".into(), 25.0)]
        );
        assert_eq!(
            vector("max without (instance) (temp)", 600),
            vec![("job=api".into(), 30.0)]
        );
        assert_eq!(vector("count(temp > 25)", 600), vec![(String::new(), 1.0)]);
        assert_eq!(vector("topk(1, temp)", 600)[0].1, 30.0);
        assert_eq!(
            vector("temp > bool 25", 600)
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            vec![0.0, 1.0]
        );
        assert_eq!(
            vector("temp * 2", 600)[0],
            ("instance=a,job=api".into(), 40.0)
        );
        assert_eq!(
            vector("temp{instance=\"b\"} - on(job) temp{instance=\"a\"}", 600),
            vec![("job=api".into(), 10.0)]
        );
        assert_eq!(
            vector(
                "temp / ignoring(instance) group_left sum by (job) (temp)",
                600
            )
            .len(),
            2
        );
        assert_eq!(vector("temp and temp > 25", 600).len(), 1);
        assert_eq!(vector("temp unless temp > 25", 600).len(), 1);
        assert_eq!(eval("1 + 2 * 3", 0).unwrap(), Value::Scalar(7.0));
        assert_eq!(vector("avg_over_time(temp[5m])", 600)[0].1, 20.0);
        assert_eq!(vector("count_over_time(temp[1m])", 600)[0].1, 4.0);
    }

    #[test]
    fn escaped_label_values() {
        assert_eq!(unescape(r#"/a\"b"#), "/a\"b");
        assert_eq!(unescape(r"a\\b\n\x41\u00e9\101"), "a\\b\nAéA");
        let mut h = Head::new(10);
        let id = h
            .series_id(vec![
                ("__name__".into(), "x".into()),
                ("path".into(), "/a\"b".into()),
            ])
            .unwrap();
        h.append(id, 1000, 1.0).unwrap();
        let e = parse(r#"x{path="/a\"b"}"#).unwrap();
        let Value::Vector(v) = Engine::new(&h, QueryLimits::default())
            .eval(&e, 2000)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn more_functions() {
        // temp is constant 20/30; req_total b rises 20 per 15 s.
        assert_eq!(
            vector("clamp_max(temp, 25)", 600)
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            vec![20.0, 25.0]
        );
        assert_eq!(
            vector("clamp(temp, 21, 29)", 600)
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            vec![21.0, 29.0]
        );
        assert!(vector("clamp(temp, 30, 20)", 600).is_empty());
        assert_eq!(
            vector("round(temp / 7)", 600)
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            vec![3.0, 4.0]
        );
        assert_eq!(
            vector("resets(req_total{instance=\"a\"}[10m])", 900)[0].1,
            1.0
        );
        assert_eq!(vector("changes(temp[10m])", 900)[0].1, 0.0);
        let d = vector("deriv(req_total{instance=\"b\"}[5m])", 600)[0].1;
        assert!((d - 20.0 / 15.0).abs() < 1e-9, "{d}");
        // b is 20 × i at i × 15 s: one hour on from 600 s (value 800) it reaches 800 + 4800.
        let p = vector("predict_linear(req_total{instance=\"b\"}[5m], 3600)", 600)[0].1;
        assert!((p - 5600.0).abs() < 1e-6, "{p}");
        assert_eq!(
            vector("absent(nonexistent{job=\"x\"})", 600),
            vec![("job=x".into(), 1.0)]
        );
        assert!(vector("absent(temp)", 600).is_empty());
        let r = vector(
            "label_replace(temp, \"host\", \"h-$1\", \"instance\", \"(.*)\")",
            600,
        );
        assert_eq!(r[0].0, "__name__=temp,host=h-a,instance=a,job=api");
        let r = vector(
            "label_join(temp, \"both\", \"/\", \"job\", \"instance\")",
            600,
        );
        assert_eq!(r[0].0, "__name__=temp,both=api/a,instance=a,job=api");
        assert_eq!(vector("timestamp(temp)", 700)[0].1, 690.0);
        // Buckets ≤1: 10, ≤2: 30, ≤+Inf: 40; the median (rank 20) is halfway through (1, 2].
        assert!(
            (bucket_quantile(0.5, vec![(1.0, 10.0), (2.0, 30.0), (f64::INFINITY, 40.0)]) - 1.5)
                .abs()
                < 1e-12
        );
        assert_eq!(
            bucket_quantile(0.99, vec![(1.0, 10.0), (2.0, 30.0), (f64::INFINITY, 40.0)]),
            2.0,
            "rank in +Inf: the highest finite bound"
        );
        assert!(
            bucket_quantile(0.5, vec![(1.0, 10.0)]).is_nan(),
            "no +Inf bucket"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse("sum(").unwrap_err().contains("parse error"));
        assert!(
            eval("holt_winters(temp[5m], 0.5, 0.5)", 600)
                .unwrap_err()
                .contains("not supported")
        );
        assert!(eval("temp[5m:1m]", 600).unwrap_err().contains("subqueries"));
        assert!(eval("temp - temp{instance=\"a\"} + on() temp", 600).is_err());
        let h = head();
        let e = Engine::new(&h, QueryLimits { max_samples: 10 })
            .eval(&parse("temp[1h]").unwrap(), 1_200_000)
            .unwrap_err();
        assert!(e.contains("more than 10 samples"), "{e}");
    }

    #[test]
    fn range_queries_equal_instant_queries_at_each_step() {
        // The range engine fetches each selector once and cuts it per step; it must agree
        // with evaluating every step on its own.
        let h = head();
        for q in [
            "rate(req_total[2m])",
            "sum by (instance) (req_total offset 1m)",
            "temp > 25",
            "irate(req_total[1m]) * 2",
            "count_over_time(temp[3m])",
        ] {
            let e = parse(q).unwrap();
            let Value::Matrix(m) =
                eval_range(&h, &e, 120_000, 1_200_000, 45_000, QueryLimits::default()).unwrap()
            else {
                panic!()
            };
            let single = Engine::new(&h, QueryLimits::default());
            let mut expected: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
            let mut t = 120_000;
            while t <= 1_200_000 {
                if let Value::Vector(v) = single.eval(&e, t).unwrap() {
                    for el in v {
                        expected.entry(el.labels).or_default().push((t, el.v));
                    }
                }
                t += 45_000;
            }
            let got: BTreeMap<Labels, Vec<(i64, f64)>> =
                m.into_iter().map(|r| (r.labels, r.points)).collect();
            assert_eq!(got, expected, "{q}");
        }
    }

    #[test]
    fn range_queries_step_through_time() {
        let h = head();
        let Value::Matrix(m) = eval_range(
            &h,
            &parse("sum(temp)").unwrap(),
            0,
            600_000,
            60_000,
            QueryLimits::default(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].points.len(), 11);
        assert!(m[0].points.iter().all(|p| p.1 == 50.0));
    }
}
