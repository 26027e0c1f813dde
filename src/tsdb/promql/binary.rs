//! Binary operators: arithmetic, comparisons (filtering or `bool`), `and`/`or`/`unless`,
//! between scalars and instant vectors, with `on`/`ignoring` and `group_left`/
//! `group_right` as Prometheus 2.42's `VectorBinop` does them. Match signatures and result
//! label sets are computed once per series (pair); each step then only compares indices.

use std::collections::HashMap;
use std::rc::Rc;

use promql_parser::parser::{self, LabelModifier, VectorMatchCardinality};

use super::super::head::Labels;
use super::eval::{Evaluator, Grid, Lbl, Series, Val, by_step, drop_name};

/// `Some(result)` for arithmetic; for comparisons `(lhs, whether it holds)`.
fn elem(op: &str, l: f64, r: f64) -> Result<(f64, bool), String> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => return Err(format!("operator {other} is not supported")),
    })
}

/// Arithmetic operators drop the metric name (comparisons and `atan2` keep it).
fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^")
}

/// The labels two series are matched on.
fn signature(l: &Labels, m: &Option<LabelModifier>) -> Labels {
    match m {
        Some(LabelModifier::Include(on)) => l
            .iter()
            .filter(|(n, _)| on.labels.contains(n))
            .cloned()
            .collect(),
        Some(LabelModifier::Exclude(ign)) => l
            .iter()
            .filter(|(n, _)| n != "__name__" && !ign.labels.contains(n))
            .cloned()
            .collect(),
        None => l.iter().filter(|(n, _)| n != "__name__").cloned().collect(),
    }
}

/// Interned signatures of both sides: an id per series.
fn signatures(
    l: &[Series],
    r: &[Series],
    m: &Option<LabelModifier>,
) -> (Vec<u32>, Vec<u32>, usize) {
    let mut ids: HashMap<Labels, u32> = HashMap::new();
    let mut id = |s: &Series| {
        let n = ids.len() as u32;
        *ids.entry(signature(&s.labels, m)).or_insert(n)
    };
    let ls = l.iter().map(&mut id).collect();
    let rs = r.iter().map(&mut id).collect();
    (ls, rs, ids.len())
}

impl Evaluator<'_> {
    pub(super) fn binary(&self, b: &parser::BinaryExpr, g: Grid) -> Result<Val, String> {
        let op = b.op.to_string().to_lowercase();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let comparison = b.op.is_comparison_operator();
        let lhs = self.eval(&b.lhs, g)?;
        let rhs = self.eval(&b.rhs, g)?;
        match (lhs, rhs) {
            (Val::Scalar(x), Val::Scalar(y)) => {
                let mut out = Vec::with_capacity(g.n);
                for (a, b) in x.into_iter().zip(y) {
                    let (v, keep) = elem(&op, a, b)?;
                    out.push(if comparison {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        v
                    });
                }
                Ok(Val::Scalar(out))
            }
            (Val::Vector(v), Val::Scalar(s)) => {
                self.vec_scalar(v, &s, &op, comparison, return_bool, false, g)
            }
            (Val::Scalar(s), Val::Vector(v)) => {
                self.vec_scalar(v, &s, &op, comparison, return_bool, true, g)
            }
            (Val::Vector(l), Val::Vector(r)) if b.op.is_set_operator() => {
                self.set_op(b, &op, l, r, g)
            }
            (Val::Vector(l), Val::Vector(r)) => self.vec_vec(b, &op, l, r, return_bool, g),
            _ => Err(format!("operator {op} needs scalars or instant vectors")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn vec_scalar(
        &self,
        v: Vec<Series>,
        s: &[f64],
        op: &str,
        comparison: bool,
        return_bool: bool,
        scalar_left: bool,
        g: Grid,
    ) -> Result<Val, String> {
        let mut out = Vec::with_capacity(v.len());
        for series in v {
            let mut pts = Vec::with_capacity(series.pts.len());
            for (i, x) in series.pts {
                let (l, r) = if scalar_left {
                    (s[i as usize], x)
                } else {
                    (x, s[i as usize])
                };
                let (mut value, mut keep) = elem(op, l, r)?;
                // A comparison keeps the vector's value even with the scalar on the left.
                if comparison && scalar_left {
                    value = r;
                }
                if return_bool {
                    value = if keep { 1.0 } else { 0.0 };
                    keep = true;
                }
                if keep {
                    pts.push((i, value));
                }
            }
            let labels = if drops_name(op) || return_bool {
                drop_name(&series.labels)
            } else {
                series.labels
            };
            out.push(Series { labels, pts });
        }
        self.unique_vector(out, g)
    }

    fn set_op(
        &self,
        b: &parser::BinaryExpr,
        op: &str,
        l: Vec<Series>,
        r: Vec<Series>,
        g: Grid,
    ) -> Result<Val, String> {
        let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
        let (ls, rs, nsig) = signatures(&l, &r, &matching);
        let mut seen = vec![u32::MAX; nsig];
        let (lsteps, rsteps) = (by_step(&l, g.n), by_step(&r, g.n));
        let mut lout: Vec<Vec<(u32, f64)>> = vec![Vec::new(); l.len()];
        let mut rout: Vec<Vec<(u32, f64)>> = vec![Vec::new(); r.len()];
        for i in 0..g.n {
            let step = i as u32;
            match op {
                "and" | "unless" => {
                    for &(si, _) in &rsteps[i] {
                        seen[rs[si as usize] as usize] = step;
                    }
                    for &(si, v) in &lsteps[i] {
                        let matched = seen[ls[si as usize] as usize] == step;
                        if matched == (op == "and") {
                            lout[si as usize].push((step, v));
                        }
                    }
                }
                _ => {
                    for &(si, v) in &lsteps[i] {
                        seen[ls[si as usize] as usize] = step;
                        lout[si as usize].push((step, v));
                    }
                    for &(si, v) in &rsteps[i] {
                        if seen[rs[si as usize] as usize] != step {
                            rout[si as usize].push((step, v));
                        }
                    }
                }
            }
        }
        let out: Vec<Series> = l
            .into_iter()
            .zip(lout)
            .chain(r.into_iter().zip(rout))
            .filter(|(_, p)| !p.is_empty())
            .map(|(s, pts)| Series {
                labels: s.labels,
                pts,
            })
            .collect();
        self.unique_vector(out, g)
    }

    fn vec_vec(
        &self,
        b: &parser::BinaryExpr,
        op: &str,
        l: Vec<Series>,
        r: Vec<Series>,
        return_bool: bool,
        g: Grid,
    ) -> Result<Val, String> {
        let modifier = b.modifier.as_ref();
        let matching = modifier.and_then(|m| m.matching.clone());
        let card = modifier
            .map(|m| m.card.clone())
            .unwrap_or(VectorMatchCardinality::OneToOne);
        let (swapped, include) = match &card {
            VectorMatchCardinality::OneToMany(inc) => (true, inc.labels.clone()),
            VectorMatchCardinality::ManyToOne(inc) => (false, inc.labels.clone()),
            _ => (false, vec![]),
        };
        let one_to_one = !matches!(
            card,
            VectorMatchCardinality::OneToMany(_) | VectorMatchCardinality::ManyToOne(_)
        );
        let (many, one) = if swapped { (r, l) } else { (l, r) };
        let (msig, osig, nsig) = signatures(&many, &one, &matching);
        let (msteps, osteps) = (by_step(&many, g.n), by_step(&one, g.n));

        // The result labels of a (many, one) pair, computed once; equal label sets share
        // one output series.
        let result_labels = |m: &Lbl, o: &Lbl| -> Labels {
            let mut out: Labels = m
                .iter()
                .filter(|(n, _)| !(n == "__name__" && (drops_name(op) || return_bool)))
                .filter(|(n, _)| {
                    !one_to_one
                        || match &matching {
                            Some(LabelModifier::Include(on)) => on.labels.contains(n),
                            Some(LabelModifier::Exclude(ign)) => !ign.labels.contains(n),
                            None => true,
                        }
                })
                .cloned()
                .collect();
            for name in &include {
                out.retain(|(k, _)| k != name);
                if let Some(v) = o.iter().find(|(k, _)| k == name)
                    && !v.1.is_empty()
                {
                    out.push(v.clone());
                }
            }
            if !include.is_empty() {
                out.sort();
            }
            out
        };
        let mut pair_out: HashMap<(u32, u32), usize> = HashMap::new();
        let mut by_labels: HashMap<Lbl, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::new();
        // Per output series: the step and signature of its newest point.
        let mut last: Vec<(u32, u32)> = Vec::new();
        let mut one_at: Vec<(u32, u32, f64)> = vec![(u32::MAX, 0, 0.0); nsig];
        let mut matched = vec![u32::MAX; nsig];
        for i in 0..g.n {
            let step = i as u32;
            for &(si, v) in &osteps[i] {
                let sig = osig[si as usize] as usize;
                if one_at[sig].0 == step {
                    let labels = signature(&one[si as usize].labels, &matching);
                    return Err(format!(
                        "found duplicate series for the match group {} on the {} hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side",
                        show(&labels),
                        if swapped { "left" } else { "right" }
                    ));
                }
                one_at[sig] = (step, si, v);
            }
            for &(mi, mv) in &msteps[i] {
                let sig = msig[mi as usize];
                let (at, oi, ov) = one_at[sig as usize];
                if at != step {
                    continue;
                }
                let (vl, vr) = if swapped { (ov, mv) } else { (mv, ov) };
                let (mut value, keep) = elem(op, vl, vr)?;
                if return_bool {
                    value = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                if one_to_one {
                    if matched[sig as usize] == step {
                        return Err("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into());
                    }
                    matched[sig as usize] = step;
                }
                let oidx = match pair_out.get(&(mi, oi)) {
                    Some(&o) => o,
                    None => {
                        let labels = Rc::new(result_labels(
                            &many[mi as usize].labels,
                            &one[oi as usize].labels,
                        ));
                        let n = out.len();
                        let o = *by_labels.entry(labels.clone()).or_insert(n);
                        if o == n {
                            out.push(Series {
                                labels,
                                pts: vec![],
                            });
                            last.push((u32::MAX, 0));
                        }
                        pair_out.insert((mi, oi), o);
                        o
                    }
                };
                if last[oidx].0 == step {
                    if last[oidx].1 == sig && !one_to_one {
                        return Err(
                            "multiple matches for labels: grouping labels must ensure unique matches"
                                .into(),
                        );
                    }
                    return Err("vector cannot contain metrics with the same labelset".into());
                }
                last[oidx] = (step, sig);
                out[oidx].pts.push((step, value));
            }
        }
        self.count(out.iter().map(|s| s.pts.len()).sum())?;
        Ok(Val::Vector(out))
    }
}

/// A label set as Prometheus prints it: `{a="1", b="2"}`.
fn show(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}
