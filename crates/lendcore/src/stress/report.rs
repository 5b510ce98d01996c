//! What a run found, as text and as a self-contained HTML page: per operation the count, the
//! rate, the latency percentiles and a histogram of latencies (SVG, drawn here, no script),
//! and every error by its code.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::scenarios::Op;
use super::{Options, Sample};

/// Latency histogram buckets, in milliseconds: each bucket holds what is below its bound and
/// at or above the one before; the last takes the rest.
const BUCKETS_MS: [f64; 16] = [
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1_000.0,
    2_000.0,
    5_000.0,
    10_000.0,
    20_000.0,
    30_000.0,
    f64::INFINITY,
];

pub struct Summary {
    scenario: &'static str,
    target: String,
    offered_rate: f64,
    offered_for: Duration,
    elapsed: Duration,
    faults: String,
    ops: Vec<OpSummary>,
    errors: BTreeMap<(Op, String), usize>,
}

struct OpSummary {
    op: Op,
    count: usize,
    ok: usize,
    /// Of every operation sent, failed ones included (a service that times out under load
    /// must not look faster for it), in milliseconds.
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    histogram: [usize; BUCKETS_MS.len()],
}

impl Summary {
    pub fn of(
        options: &Options,
        samples: &[Sample],
        offered_for: Duration,
        elapsed: Duration,
    ) -> Summary {
        let mut by_op: BTreeMap<Op, Vec<&Sample>> = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for sample in samples {
            by_op.entry(sample.op).or_default().push(sample);
            if let Some(code) = &sample.error {
                *errors.entry((sample.op, code.clone())).or_insert(0) += 1;
            }
        }
        let ops = by_op
            .into_iter()
            .map(|(op, samples)| {
                let sent = super::sent_latencies_ms(
                    samples.iter().map(|s| (s.latency, s.error.as_deref())),
                );
                let at = |q| super::nearest_rank(&sent, q);
                let mut histogram = [0; BUCKETS_MS.len()];
                for ms in &sent {
                    let bucket = BUCKETS_MS
                        .iter()
                        .position(|bound| ms < bound)
                        .unwrap_or(BUCKETS_MS.len() - 1);
                    histogram[bucket] += 1;
                }
                OpSummary {
                    op,
                    count: samples.len(),
                    ok: samples.iter().filter(|s| s.error.is_none()).count(),
                    p50: at(0.50),
                    p90: at(0.90),
                    p99: at(0.99),
                    max: sent.last().copied().unwrap_or(0.0),
                    histogram,
                }
            })
            .collect();
        let f = options.faults;
        Summary {
            scenario: options.scenario.as_str(),
            target: options.url.clone(),
            offered_rate: options.rate,
            offered_for,
            elapsed,
            faults: format!(
                "timeout {:.1}%, 5xx {:.1}%, reject {:.1}%",
                f.timeout * 100.0,
                f.server_error * 100.0,
                f.reject * 100.0
            ),
            ops,
            errors,
        }
    }

    pub fn text(&self) -> String {
        let total: usize = self.ops.iter().map(|o| o.count).sum();
        let mut out = format!(
            "{} against {}: {} operations offered at {:.0}/s over {:.1} s (finished in {:.1} s); \
             payout faults: {}\n",
            self.scenario,
            self.target,
            total,
            self.offered_rate,
            self.offered_for.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.faults
        );
        out.push_str(
            "latency: from when each operation was due, every one sent, failed ones included\n",
        );
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "operation", "count", "ok", "ok/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for o in &self.ops {
            let _ = writeln!(
                out,
                "{:<10} {:>8} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                o.op.as_str(),
                o.count,
                o.ok,
                o.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON),
                o.p50,
                o.p90,
                o.p99,
                o.max
            );
        }
        if self.errors.is_empty() {
            out.push_str("errors: none\n");
        } else {
            out.push_str("errors by code:\n");
            for ((op, code), n) in &self.errors {
                let _ = writeln!(out, "  {:<10} {code:<40} {n:>8}", op.as_str());
            }
        }
        out
    }

    pub fn html(&self) -> String {
        let mut body = String::new();
        for o in &self.ops {
            let _ = write!(
                body,
                "<h2>{op}</h2><p>{ok} of {count} succeeded. Latency of every one sent, failed ones \
                 included: p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms.</p>{svg}",
                op = o.op.as_str(),
                ok = o.ok,
                count = o.count,
                p50 = o.p50,
                p90 = o.p90,
                p99 = o.p99,
                max = o.max,
                svg = histogram_svg(&o.histogram)
            );
        }
        let errors = if self.errors.is_empty() {
            "<p>None.</p>".to_owned()
        } else {
            let rows: String = self
                .errors
                .iter()
                .map(|((op, code), n)| {
                    format!(
                        "<tr><td>{}</td><td><code>{}</code></td><td class=n>{n}</td></tr>",
                        op.as_str(),
                        escape(code)
                    )
                })
                .collect();
            format!(
                "<table><tr><th>operation</th><th>code</th><th class=n>count</th></tr>{rows}</table>"
            )
        };
        format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>lendcore load test: {scenario}</title>\
             <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:24px auto;padding:0 16px;color:#1d2430}}\
             table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}}\
             .n{{text-align:right}}svg text{{font:11px system-ui,sans-serif;fill:#5a6473}}</style></head><body>\
             <h1>lendcore load test: {scenario}</h1>\
             <p>Against <code>{target}</code>: {offered:.0} operations a second offered (open loop, Poisson arrivals, \
             latency timed from when each was due) for {secs:.1} s; finished in {elapsed:.1} s. Payout faults: {faults}.</p>\
             {body}<h2>Errors by code</h2>{errors}</body></html>\n",
            scenario = self.scenario,
            target = escape(&self.target),
            offered = self.offered_rate,
            secs = self.offered_for.as_secs_f64(),
            elapsed = self.elapsed.as_secs_f64(),
            faults = self.faults,
        )
    }
}

/// A bar per latency bucket, scaled to the fullest.
fn histogram_svg(histogram: &[usize]) -> String {
    let (width, height, bar) = (720.0, 180.0, 720.0 / histogram.len() as f64);
    let most = histogram.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" role=\"img\" \
         aria-label=\"latency histogram\">",
        height + 36.0
    );
    for (i, count) in histogram.iter().enumerate() {
        let h = (*count as f64 / most) * height;
        let x = i as f64 * bar;
        let label = match BUCKETS_MS[i] {
            b if b.is_infinite() => "more".to_owned(),
            b if b >= 1000.0 => format!("<{}s", b / 1000.0),
            b => format!("<{b}ms"),
        };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#1f5fa8\"><title>{label}: {count}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{count}</text>",
            x + 2.0,
            height - h,
            bar - 4.0,
            x + bar / 2.0,
            height + 14.0,
            x + bar / 2.0,
            height + 30.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::{Faults, Scenario};

    #[test]
    fn a_report_gives_percentiles_a_histogram_and_errors_by_code() {
        let options = Options {
            url: "http://127.0.0.1:8080".into(),
            key: "k".into(),
            scenario: Scenario::Mixed,
            rate: 10.0,
            duration: Duration::from_secs(1),
            faults: Faults {
                timeout: 0.1,
                ..Faults::default()
            },
            html: None,
            allow_remote: false,
            sms_inbox: None,
            sms_key: None,
            forwarded_for: false,
            seed: 1,
        };
        let mut samples: Vec<Sample> = (1..=100)
            .map(|ms| Sample {
                op: Op::Drawdown,
                latency: Duration::from_millis(ms),
                error: None,
            })
            .collect();
        samples.push(Sample {
            op: Op::Drawdown,
            latency: Duration::from_secs(3),
            error: Some("system.overloaded".into()),
        });
        samples.push(Sample {
            op: Op::Apply,
            latency: Duration::from_millis(40),
            error: None,
        });
        let summary = Summary::of(
            &options,
            &samples,
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        let drawdown = summary.ops.iter().find(|o| o.op == Op::Drawdown).unwrap();
        assert_eq!((drawdown.count, drawdown.ok), (101, 100));
        assert_eq!(
            (drawdown.p50, drawdown.p99, drawdown.max),
            (51.0, 100.0, 3000.0),
            "a failure's time counts too"
        );
        assert_eq!(
            drawdown.histogram[..8],
            [0, 1, 3, 5, 10, 30, 50, 1],
            "<1 ms, <2, <5, <10, <20, <50, <100, <200"
        );
        let text = summary.text();
        assert!(
            text.contains("system.overloaded")
                && text.contains("drawdown")
                && text.contains("apply"),
            "{text}"
        );
        let html = summary.html();
        assert!(
            html.contains("<svg")
                && html.contains("system.overloaded")
                && !html.contains("<script"),
            "{html}"
        );
    }
}
