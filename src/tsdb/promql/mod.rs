//! PromQL with Prometheus 2.42's semantics, checked against the real Prometheus by
//! `tests/it/promql_compat.rs`. Parsing is promql-parser's (functions 2.42 lacks are refused);
//! evaluation is ours and sans-IO: the data comes through `tsdb::Source`, the time as an
//! argument. `eval` evaluates every node once over the whole grid of step times (an instant
//! query is a grid of one step), so label sets are shared (`Rc`), selectors are fetched once
//! and range functions slide over each series' samples instead of copying a window per step.
//! Submodules: `eval` (grid, selectors, subqueries), `functions`, `aggregate`, `binary`.

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self, Expr};

use super::Source;
use super::head::{Labels, MatchOp, Matcher};

mod aggregate;
mod binary;
mod eval;
mod functions;
#[cfg(test)]
mod tests;

pub use functions::{bucket_quantile, extrapolated, instant_rate, linear_regression};

/// Prometheus' default lookback for instant selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Prometheus' limit of points per series in a range query.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

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
    /// Samples a query may read plus points it may produce (Prometheus' `query.max-samples`
    /// plays the same role).
    pub max_samples: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_samples: 50_000_000,
        }
    }
}

/// Why a query failed: the caller maps `Parse` to HTTP 400 `bad_data` and `Execution` to
/// 422 `execution`, as Prometheus does.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    Parse(String),
    Execution(String),
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

/// Functions promql-parser knows but Prometheus 2.42 does not: refused at parse time, as
/// 2.42 refuses them.
const NOT_IN_2_42: &[&str] = &["sort_by_label", "sort_by_label_desc"];

/// Parses a query; on error the parser's message, prefixed like Prometheus' with the
/// `line:column` where it can be told (the end of an incomplete query, the character a
/// lexer error starts at).
pub fn parse(q: &str) -> Result<Expr, String> {
    let e = parser::parse(q).map_err(|e| match error_position(q, &e) {
        Some((line, col)) => format!("{line}:{col}: parse error: {e}"),
        None => format!("parse error: {e}"),
    })?;
    let mut unknown = None;
    walk(&e, &mut |n| {
        if let Expr::Call(c) = n
            && NOT_IN_2_42.contains(&c.func.name)
        {
            unknown.get_or_insert(c.func.name);
        }
    });
    match unknown {
        Some(f) => Err(format!("parse error: unknown function with name {f:?}")),
        None => Ok(e),
    }
}

/// Where a parse error is: the end of input for an incomplete query; for a lexer error, the
/// shortest prefix giving the same error. 1-based line and column (in characters).
fn error_position(q: &str, msg: &str) -> Option<(usize, usize)> {
    let at = |byte: usize| {
        let before = &q[..byte];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    };
    if [
        "end of input",
        "unclosed",
        "unterminated",
        "no expression found",
    ]
    .iter()
    .any(|m| msg.contains(m))
    {
        return Some(at(q.len()));
    }
    if q.len() > 4096 || parser::lexer(q).err().as_deref() != Some(msg) {
        return None;
    }
    q.char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .find(|&end| parser::lexer(&q[..end]).err().as_deref() == Some(msg))
        .map(|end| at(q[..end].char_indices().last().map_or(0, |(i, _)| i)))
}

/// Calls `f` on every node of `e`.
fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Aggregate(a) => {
            walk(&a.expr, f);
            if let Some(p) = &a.param {
                walk(p, f);
            }
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, f)),
        _ => {}
    }
}

/// Whether an error message from `parse`, `Engine` or `eval_range` is the client's bad
/// input (HTTP 400 `bad_data` in Prometheus' API) rather than a failed execution (422).
pub fn is_bad_data(msg: &str) -> bool {
    // Parse errors may start with their position, `1:5: parse error: …`.
    let msg = match msg.split_once(": parse error") {
        Some((pos, _)) if pos.chars().all(|c| c.is_ascii_digit() || c == ':') => {
            &msg[pos.len() + 2..]
        }
        _ => msg,
    };
    BAD_DATA_PREFIXES.iter().any(|p| msg.starts_with(p))
}

/// How the messages of `QueryError::Parse` begin.
const BAD_DATA_PREFIXES: &[&str] = &[
    "parse error",
    "zero or negative query resolution",
    "end timestamp must not be before",
    "exceeded maximum resolution",
    "invalid expression type",
];

/// Evaluates queries against a `Source`.
pub struct Engine<'a> {
    src: &'a dyn Source,
    limits: QueryLimits,
}

impl<'a> Engine<'a> {
    pub fn new(src: &'a dyn Source, limits: QueryLimits) -> Self {
        Engine { src, limits }
    }

    /// Evaluates `e` at `t` (milliseconds since the epoch): an instant query.
    pub fn eval(&self, e: &Expr, t: i64) -> Result<Value, String> {
        self.instant(e, t).map_err(|e| match e {
            QueryError::Parse(m) | QueryError::Execution(m) => m,
        })
    }

    /// An instant query, with the kind of failure.
    pub fn instant(&self, e: &Expr, t: i64) -> Result<Value, QueryError> {
        let ev = eval::Evaluator::new(self.src, self.limits, t, t);
        ev.run(e, eval::Grid::new(t, 1, 1))
            .map(|v| v.into_instant())
            .map_err(QueryError::Execution)
    }

    /// A range query: `e` at `start`, `start + step`, … up to `end`, as series.
    pub fn range(&self, e: &Expr, start: i64, end: i64, step: i64) -> Result<Value, QueryError> {
        if step <= 0 {
            return Err(QueryError::Parse(
                "zero or negative query resolution step widths are not accepted: try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::Parse(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end - start) / step > MAX_POINTS_PER_SERIES {
            return Err(QueryError::Parse(
                "exceeded maximum resolution of 11,000 points per timeseries: try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let kind = match e.value_type() {
            parser::value::ValueType::Matrix => Some("range vector"),
            parser::value::ValueType::String => Some("string"),
            _ => None,
        };
        if let Some(kind) = kind {
            return Err(QueryError::Parse(format!(
                "invalid expression type \"{kind}\" for range query, must be Scalar or instant Vector"
            )));
        }
        let n = ((end - start) / step + 1) as usize;
        let ev = eval::Evaluator::new(self.src, self.limits, start, end);
        ev.run(e, eval::Grid::new(start, step, n))
            .map(|v| v.into_range(eval::Grid::new(start, step, n)))
            .map_err(QueryError::Execution)
    }
}

/// Evaluates over a range: one value per step, collected into series sorted by labels.
pub fn eval_range(
    src: &dyn Source,
    e: &Expr,
    start: i64,
    end: i64,
    step: i64,
    limits: QueryLimits,
) -> Result<Value, String> {
    Engine::new(src, limits)
        .range(e, start, end, step)
        .map_err(|e| match e {
            QueryError::Parse(m) | QueryError::Execution(m) => m,
        })
}
