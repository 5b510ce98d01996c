//! The imported model decides exactly as GoRules' own engine on the same JDM file: the same
//! rules of the same tables fire, with the same outcome, reason, warning and percent, for each
//! of 10,000 generated lines (values at and around every edge the model tests, some missing).

mod common;

use std::collections::BTreeMap;

use lendcore_jdm_parity::{Decided, from_trace, lines, native, native_policy};
use zen_engine::EvaluationOptions;

#[test]
fn lendcore_decides_as_zen_engine_on_ten_thousand_lines() {
    let (policy, names) = native_policy();
    let decision = common::zen_decision();
    let runtime = common::runtime();
    let mut differ: Vec<(usize, Decided, Decided)> = Vec::new();
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    let lines = lines(10_000, 2026);
    for (i, line) in lines.iter().enumerate() {
        let ours = native(&policy, &names, &line.features());
        let response = runtime
            .block_on(decision.evaluate_with_opts(
                line.context().into(),
                EvaluationOptions {
                    trace: true,
                    max_depth: 5,
                },
            ))
            .unwrap_or_else(|e| panic!("zen-engine on line {i} {line:?}: {e:?}"));
        let trace = response
            .trace
            .as_ref()
            .and_then(|t| t.as_graph())
            .expect("a graph's trace");
        let theirs = from_trace(
            &serde_json::to_value(trace).expect("a trace as JSON"),
            &names,
        );
        for (table, hits) in &ours {
            *fired.entry(table.clone()).or_default() += usize::from(!hits.is_empty());
        }
        if ours != theirs {
            differ.push((i, ours, theirs));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} lines decided differently; the first: line {:?}\nlendcore: {:#?}\nzen-engine: {:#?}",
        differ.len(),
        lines.len(),
        lines[differ[0].0],
        differ[0].1,
        differ[0].2
    );
    // Not a vacuous agreement: every table fired for many lines, and missed for many.
    for (table, n) in &fired {
        assert!(
            (100..9_900).contains(n),
            "{table} fired for {n} of 10000 lines"
        );
    }
}
