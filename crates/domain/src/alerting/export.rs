//! The rules as a Prometheus rules file, for lenders who run Prometheus and Alertmanager: each
//! rule over the counters `/metrics` exports (docs/OPERATIONS.md), evaluated every minute.
//! Prometheus has no median absolute deviation, so an anomaly there is scored against the
//! median and the standard deviation of the same window on earlier days (daily subqueries),
//! with the same floor; lendcore's own evaluation stays the reference.

use super::{AlertRule, Baseline, Condition, Selector, Signal};

/// The counter each signal is exported as; its labels are the signal's.
fn metric(signal: Signal) -> &'static str {
    match signal {
        Signal::Events => "lendcore_events_total",
        Signal::PayoutCalls => "lendcore_payout_calls_total",
        Signal::Decisions => "lendcore_credit_decisions_total",
    }
}

/// A PromQL string literal.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as a regular expression that matches it alone.
fn literal_regex(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn series(selector: &Selector) -> String {
    let matchers: Vec<String> = selector
        .matching
        .iter()
        .map(|(label, values)| match values.as_slice() {
            [one] => format!("{label}={}", quoted(one)),
            many => {
                let alternatives: Vec<String> = many.iter().map(|v| literal_regex(v)).collect();
                format!("{label}=~{}", quoted(&alternatives.join("|")))
            }
        })
        .collect();
    format!("{}{{{}}}", metric(selector.signal), matchers.join(","))
}

/// The selector's increase over `window`, summed per group, `offset` back.
fn count(selector: &Selector, by: &str, window: &str, offset: Option<&str>) -> String {
    let offset = offset.map_or(String::new(), |o| format!(" offset {o}"));
    format!(
        "sum by ({by}) (increase({}[{window}]{offset}))",
        series(selector)
    )
}

fn expression(rule: &AlertRule) -> String {
    let by = rule.group_by.as_deref().unwrap_or("");
    let w = format!("{}m", rule.window_minutes);
    match &rule.condition {
        Condition::Threshold { count: c, above } => format!("{} > {above}", count(c, by, &w, None)),
        Condition::Ratio {
            numerator,
            denominator,
            above,
            min_denominator,
        } => {
            let den = count(denominator, by, &w, None);
            format!(
                "({}) / ({den}) > {above} and ({den}) >= {min_denominator}",
                count(numerator, by, &w, None)
            )
        }
        Condition::Change {
            count: c,
            factor,
            min_count,
        } => {
            let now = count(c, by, &w, None);
            let before = count(c, by, &w, Some(&w));
            // A group with nothing before is held to the minimum alone, as lendcore holds it.
            format!("({now}) >= {factor} * (({before}) or ({now}) * 0) and ({now}) >= {min_count}")
        }
        Condition::Anomaly {
            count: c,
            baseline,
            baseline_days,
            score,
            min_count,
        } => {
            let now = count(c, by, &w, None);
            let days = format!("({now})[{baseline_days}d:1d] offset 1d");
            let centre = match baseline {
                Baseline::SameHourMedian => format!("quantile_over_time(0.5, {days})"),
                Baseline::Ewma => format!("avg_over_time({days})"),
            };
            let spread = format!("stddev_over_time({days})");
            let floor = format!("sqrt(clamp_min({centre}, 1))");
            format!(
                "(({now}) - {centre}) / ((({spread}) > ({floor})) or ({floor})) > {score} \
                 and ({now}) >= {min_count}"
            )
        }
    }
}

/// Prometheus names alerts with letters, digits and `_`.
fn alert_name(rule: &str) -> String {
    let name: String = rule
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("lendcore_{name}")
}

/// YAML's double-quoted scalars take JSON's escapes.
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The enabled rules as one group of a Prometheus rules file.
pub fn prometheus_rules(rules: &[AlertRule]) -> String {
    let mut out = String::from(
        "# Written by `lendcore alerts export` from lendcore's alert rules \
         (docs/OPERATIONS.md).\ngroups:\n  - name: lendcore\n    interval: 1m\n    rules:\n",
    );
    for rule in rules.iter().filter(|r| r.enabled) {
        out.push_str(&format!(
            "      - alert: {}\n        expr: {}\n",
            alert_name(&rule.name),
            yaml_string(&expression(rule))
        ));
        if rule.evaluations > 1 {
            out.push_str(&format!("        for: {}m\n", rule.evaluations - 1));
        }
        let severity = match rule.severity {
            super::Severity::Page => "page",
            super::Severity::Ticket => "ticket",
        };
        out.push_str(&format!(
            "        labels:\n          severity: {severity}\n          lendcore_rule: {}\n        \
             annotations:\n          summary: {}\n",
            yaml_string(&rule.name),
            yaml_string(&rule.description)
        ));
    }
    out
}
