//! Unit tests of the evaluator on a small in-memory head; agreement with the real
//! Prometheus is `tests/it/promql_compat.rs`'s job.

use super::*;
use crate::tsdb::head::Head;
use std::collections::BTreeMap;

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
    // The last sample is at 1200 s; Prometheus 2.42's lookback window is closed, so it is
    // still found at 1500 s, not at 1501 s.
    assert_eq!(vector("temp{instance=\"a\"}", 1500).len(), 1);
    assert_eq!(vector("temp{instance=\"a\"}", 1501).len(), 0);
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
    // a resets from 390 to 0 at 600 s. Over [450 s, 750 s] (2.42 windows are closed) the 21
    // samples rise 10 per step except across the reset, where Prometheus counts the new
    // value (0): 19 × 10 = 190 over 300 s, samples on both edges, so no extrapolation.
    let v = vector("rate(req_total{instance=\"a\"}[5m])", 750);
    assert!((v[0].1 - 190.0 / 300.0).abs() < 1e-9, "{v:?}");
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
    assert_eq!(vector("count_over_time(temp[1m])", 600)[0].1, 5.0);
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
        (bucket_quantile(0.5, vec![(1.0, 10.0), (2.0, 30.0), (f64::INFINITY, 40.0)]) - 1.5).abs()
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
    // Positions as Prometheus gives them: the end of an incomplete query, a bad character.
    assert_eq!(
        parse("sum(").unwrap_err(),
        "1:5: parse error: unclosed left parenthesis"
    );
    let e = parse("up{a=\"b\"} $ 1").unwrap_err();
    assert!(e.starts_with("1:11: parse error: "), "{e}");
    assert!(is_bad_data(&e) && is_bad_data("parse error: invalid promql query"));
    assert!(!is_bad_data(
        "vector cannot contain metrics with the same labelset"
    ));
    assert!(
        eval("holt_winters(temp[5m], 0, 0.5)", 600)
            .unwrap_err()
            .contains("smoothing factor")
    );
    assert!(
        parse("sort_by_label(temp, \"a\")")
            .unwrap_err()
            .contains("unknown function")
    );
    assert!(eval("temp - temp{instance=\"a\"} + on() temp", 600).is_err());
    let h = head();
    let e = Engine::new(&h, QueryLimits { max_samples: 10 })
        .eval(&parse("temp[1h]").unwrap(), 1_200_000)
        .unwrap_err();
    assert!(e.contains("too many samples"), "{e}");
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
        "max_over_time(rate(req_total[1m])[5m:30s])",
        "topk(1, req_total)",
        "count_values(\"v\", temp)",
        "quantile(0.5, req_total) + on() group_left sum(temp)",
        "absent(nothing)",
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
