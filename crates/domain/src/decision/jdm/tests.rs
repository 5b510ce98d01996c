use serde_json::{Value, json};

use super::*;
use crate::decision::policy::CellInput;
use crate::decision::{BureauStatus, DEFAULT_POLICY, Features, Policy};

fn table(id: &str, name: &str, hit: &str, inputs: &[(&str, &str)], rules: Value) -> Value {
    json!({
        "id": id, "name": name, "type": "decisionTableNode", "position": {"x": 0, "y": 0},
        "content": {
            "hitPolicy": hit,
            "inputs": inputs.iter().map(|(id, field)| json!({"id": id, "name": field, "field": field})).collect::<Vec<_>>(),
            "outputs": [
                {"id": "o", "name": "Outcome", "field": "result.outcome"},
                {"id": "r", "name": "Reason", "field": "result.reason"}
            ],
            "rules": rules
        }
    })
}

fn model(nodes: Vec<Value>, edges: &[(&str, &str, Option<&str>)]) -> Value {
    let mut all = vec![
        json!({"id": "in", "name": "Request", "type": "inputNode", "content": {}}),
        json!({"id": "out", "name": "Response", "type": "outputNode", "content": {}}),
    ];
    all.extend(nodes);
    json!({
        "contentType": "application/vnd.gorules.decision",
        "nodes": all,
        "edges": edges.iter().enumerate().map(|(i, (from, to, handle))| {
            let mut edge = json!({"id": format!("e{i}"), "sourceId": from, "targetId": to, "type": "edge"});
            if let Some(h) = handle { edge["sourceHandle"] = json!(h); }
            edge
        }).collect::<Vec<_>>()
    })
}

fn imported(document: &Value, stage: Stage) -> Imported {
    import(document, stage, &BTreeMap::new()).unwrap_or_else(|v| panic!("{v}"))
}

fn refused(document: &Value) -> Vec<(String, String, String)> {
    import(document, Stage::Application, &BTreeMap::new())
        .unwrap_err()
        .all()
        .iter()
        .map(|v| (v.field.clone(), v.code.to_owned(), v.message.clone()))
        .collect()
}

fn cell(json: Value) -> CellInput {
    serde_json::from_value(json).unwrap()
}

/// The imported tables in the default policy, compiled: what decides.
fn compiled(tables: Vec<TableInput>) -> Policy {
    let base: PolicyDocument = serde_json::from_str(DEFAULT_POLICY).unwrap();
    Policy::compile(merge(base, tables)).unwrap_or_else(|v| panic!("{v}"))
}

#[test]
fn a_decision_table_becomes_a_policy_table_cell_by_cell() {
    let document = model(
        vec![table(
            "t",
            "eligibility",
            "first",
            &[("a", "applicant.age_years"), ("g", "region")],
            json!([
                {"_id": "1", "a": "< 18", "g": "", "o": "\"decline\"", "r": "\"policy.regulatory_limit\""},
                {"_id": "2", "a": "(70..120]", "g": "'north', 'south'", "o": "'refer'", "r": "'policy.regulatory_limit'", "_description": "elderly in two regions"},
                {"_id": "3", "a": "[18..25.5]", "g": "-", "o": "\"refer\"", "r": "\"identity.not_verified\""}
            ]),
        )],
        &[("in", "t", None), ("t", "out", None)],
    );
    let got = imported(&document, Stage::Application);
    assert_eq!(got.tables.len(), 1);
    assert!(
        got.notes
            .iter()
            .any(|n| n.contains("“eligibility”") && n.contains("`-`")),
        "{:?}",
        got.notes
    );
    let t = &got.tables[0];
    assert_eq!(
        (t.name.as_str(), t.stage, t.hit),
        ("eligibility", Stage::Application, HitPolicy::First)
    );
    let whens: Vec<&BTreeMap<String, CellInput>> = t.rules.iter().map(|r| &r.when).collect();
    assert_eq!(
        whens[0],
        &[("age_years".to_owned(), cell(json!({"max": 17})))].into()
    );
    assert_eq!(
        whens[1],
        &[
            ("age_years".to_owned(), cell(json!({"min": 71, "max": 120}))),
            ("region".to_owned(), cell(json!({"in": ["north", "south"]}))),
        ]
        .into()
    );
    assert_eq!(
        whens[2],
        &[("age_years".to_owned(), cell(json!({"min": 18, "max": 25})))].into(),
        "25.5 ends at 25 for whole years"
    );
    assert_eq!(
        (
            t.rules[1].outcome,
            t.rules[1].reason,
            t.rules[1].note.as_deref()
        ),
        (
            RuleOutcome::Refer,
            Reason::parse("policy.regulatory_limit"),
            Some("elderly in two regions")
        )
    );
    assert_eq!(
        (t.rules[2].outcome, t.rules[2].reason),
        (RuleOutcome::Refer, Reason::parse("identity.not_verified"))
    );
    compiled(got.tables);
}

#[test]
fn a_switch_branch_is_folded_into_the_rows_it_leads_to() {
    // First hit: the second statement is reached only when the first is false.
    let switch = json!({
        "id": "s", "name": "by overdue", "type": "switchNode",
        "content": {"hitPolicy": "first", "statements": [
            {"id": "late", "condition": "days_overdue_now > 0 and bureau_lenders_open >= 3"},
            {"id": "else", "condition": ""}
        ]}
    });
    let late = table(
        "t1",
        "late",
        "first",
        &[("x", "amount_minor")],
        json!([
            {"_id": "1", "x": ">= 100000", "o": "\"decline\"", "r": "\"credit.overdue\""}
        ]),
    );
    let rest = table(
        "t2",
        "rest",
        "collect",
        &[("v", "drawdowns_24h")],
        json!([
            {"_id": "1", "v": ">= 3", "o": "\"hold\"", "r": "\"risk.velocity\""}
        ]),
    );
    let document = model(
        vec![switch, late, rest],
        &[
            ("in", "s", None),
            ("s", "t1", Some("late")),
            ("s", "t2", Some("else")),
            ("t1", "out", None),
            ("t2", "out", None),
        ],
    );
    let got = imported(&document, Stage::Drawdown);
    let late = &got.tables[0];
    assert_eq!(late.rules.len(), 1);
    assert_eq!(
        late.rules[0].when,
        [
            ("amount_minor".to_owned(), cell(json!({"min": 100000}))),
            ("bureau_lenders_open".to_owned(), cell(json!({"min": 3}))),
            ("days_overdue_now".to_owned(), cell(json!({"min": 1}))),
        ]
        .into()
    );
    // Not (overdue and many lenders): not overdue (or unknown), or overdue with fewer lenders.
    let rest = &got.tables[1];
    assert_eq!(rest.rules.len(), 2, "{:?}", rest.rules);
    let policy = compiled(got.tables.clone());
    let decide = |overdue: i64, lenders: Option<i64>, amount: i64, recent: i64| {
        let mut f = Features::default();
        f.set_number(Feature::DaysOverdueNow, overdue);
        if let Some(l) = lenders {
            f.set_number(Feature::BureauLendersOpen, l);
        }
        f.set_number(Feature::AmountMinor, amount);
        f.set_number(Feature::DrawdownsLast24Hours, recent);
        policy
            .decide(Stage::Drawdown, &f, BureauStatus::Answered)
            .fired
            .iter()
            .filter(|r| r.table == "late" || r.table == "rest")
            .map(|r| r.table.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(decide(5, Some(4), 200_000, 5), ["late"]);
    assert_eq!(
        decide(5, Some(4), 50_000, 5),
        Vec::<String>::new(),
        "the late branch, no row"
    );
    assert_eq!(decide(5, Some(2), 200_000, 5), ["rest"]);
    assert_eq!(decide(0, Some(4), 200_000, 5), ["rest"]);
    assert_eq!(
        decide(5, None, 200_000, 5),
        ["rest"],
        "unknown lenders: not the late branch"
    );
    assert_eq!(decide(0, Some(1), 200_000, 1), Vec::<String>::new());
}

#[test]
fn an_expression_node_is_a_rule_its_branch_fires() {
    let switch = json!({
        "id": "s", "name": "frozen?", "type": "switchNode",
        "content": {"hitPolicy": "collect", "statements": [
            {"id": "yes", "condition": "line_frozen == true and region in ['north']"}
        ]}
    });
    let set = json!({
        "id": "x", "name": "keep frozen", "type": "expressionNode",
        "content": {"expressions": [
            {"id": "1", "key": "outcome", "value": "'warn'"},
            {"id": "2", "key": "result.warning", "value": "\"line_expiring_soon\""}
        ]}
    });
    let document = model(
        vec![switch, set],
        &[
            ("in", "s", None),
            ("s", "x", Some("yes")),
            ("x", "out", None),
        ],
    );
    let got = imported(&document, Stage::LineReview);
    let rule = &got.tables[0].rules[0];
    assert_eq!(
        (rule.outcome, rule.warning),
        (
            RuleOutcome::Warn,
            Some(crate::decision::Warning::LineExpiringSoon)
        )
    );
    assert_eq!(
        rule.when,
        [
            ("line_frozen".to_owned(), cell(json!({"is": true}))),
            ("region".to_owned(), cell(json!({"in": ["north"]}))),
        ]
        .into()
    );
    compiled(got.tables);
}

#[test]
fn what_cannot_be_imported_is_refused_with_the_node_and_why() {
    let function = json!({"id": "f", "name": "Score in JS", "type": "functionNode", "content": {"source": "export const handler = () => ({})"}});
    let odd = table(
        "t",
        "odd",
        "first",
        &[("a", "shoe_size"), ("b", "age_years")],
        json!([
            {"_id": "1", "a": "> 40", "b": "startsWith($, '1')", "o": "\"maybe\"", "r": "\"credit.overdue\""}
        ]),
    );
    let computed = json!({"id": "x", "name": "ratio", "type": "expressionNode",
        "content": {"expressions": [{"id": "1", "key": "dti", "value": "debt / income"}]}});
    let chained = table(
        "t2",
        "after",
        "first",
        &[("a", "age_years")],
        json!([
            {"_id": "1", "a": "> 1", "o": "\"decline\"", "r": "\"credit.overdue\""}
        ]),
    );
    let or_switch = json!({"id": "s", "name": "either", "type": "switchNode",
        "content": {"hitPolicy": "first", "statements": [{"id": "a", "condition": "age_years > 1 or region == 'x'"}]}});
    let behind = table(
        "t3",
        "behind",
        "first",
        &[("a", "age_years")],
        json!([
            {"_id": "1", "a": "> 1", "o": "\"decline\"", "r": "\"credit.overdue\""}
        ]),
    );
    let document = model(
        vec![function, odd, computed, chained, or_switch, behind],
        &[
            ("in", "f", None),
            ("in", "t", None),
            ("t", "out", None),
            ("in", "x", None),
            ("x", "t2", None),
            ("t2", "out", None),
            ("in", "s", None),
            ("s", "t3", Some("a")),
            ("t3", "out", None),
        ],
    );
    let problems = refused(&document);
    let has = |code: &str, words: &[&str]| {
        problems
            .iter()
            .any(|(_, c, m)| c == code && words.iter().all(|w| m.contains(w)))
    };
    assert!(
        has("jdm.unsupported_node", &["“Score in JS”", "JavaScript"]),
        "{problems:#?}"
    );
    assert!(
        has("jdm.unknown_field", &["“odd”", "shoe_size"]),
        "{problems:#?}"
    );
    assert!(
        has(
            "jdm.unsupported_expression",
            &["“odd”", "row 1", "startsWith"]
        ),
        "{problems:#?}"
    );
    assert!(
        has("jdm.invalid_output", &["“odd”", "maybe"]),
        "{problems:#?}"
    );
    assert!(
        has("jdm.unsupported_expression", &["“ratio”", "dti"]),
        "{problems:#?}"
    );
    assert!(
        has("jdm.unsupported_graph", &["“ratio”", "feeds", "“after”"]),
        "{problems:#?}"
    );
    assert!(
        has(
            "jdm.unsupported_graph",
            &["“after”", "takes its input from", "“ratio”"]
        ),
        "{problems:#?}"
    );
    assert!(
        has("jdm.unsupported_expression", &["“either”", "or"]),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .all(|(field, _, _)| field.starts_with("nodes")),
        "{problems:#?}"
    );
    assert_eq!(refused(&json!({"nodes": "no"}))[0].1, "jdm.invalid");

    let stray = table(
        "t",
        "draft",
        "first",
        &[("a", "age_years")],
        json!([
            {"_id": "1", "a": "> 1", "o": "\"decline\"", "r": "\"credit.overdue\""}
        ]),
    );
    let problems = refused(&model(vec![stray], &[("in", "t", None)]));
    assert!(
        problems
            .iter()
            .any(|(_, c, m)| c == "jdm.unsupported_graph" && m.contains("“draft” leads nowhere")),
        "{problems:#?}"
    );
}

#[test]
fn a_model_too_large_to_work_out_is_refused_before_the_work() {
    // Five switches in a chain, each first-hit over ten statements on two features of its own
    // and a default: the cases that reach the last table multiply past any bound.
    const PAIRS: [(&str, &str); 5] = [
        ("days_overdue_now", "bureau_lenders_open"),
        ("applications_7d", "applications_30d"),
        ("open_lines", "mobile_changes_90d"),
        ("bank_account_changes_90d", "address_changes_90d"),
        ("bureau_inquiries_3m", "worst_days_overdue_12m"),
    ];
    let mut nodes = Vec::new();
    let mut edges: Vec<(String, String, Option<String>)> = Vec::new();
    let mut from = ("in".to_owned(), None);
    for (k, (a, b)) in PAIRS.iter().enumerate() {
        let mut statements: Vec<Value> = (0..10)
            .map(|i| {
                json!({"id": format!("s{k}-{i}"), "condition": format!("{a} > {i} and {b} < {}", 10 - i)})
            })
            .collect();
        statements.push(json!({"id": format!("s{k}-else"), "condition": ""}));
        nodes.push(
            json!({"id": format!("s{k}"), "name": format!("switch {k}"), "type": "switchNode",
            "content": {"hitPolicy": "first", "statements": statements}}),
        );
        edges.push((from.0.clone(), format!("s{k}"), from.1.clone()));
        from = (format!("s{k}"), Some(format!("s{k}-else")));
    }
    nodes.push(table(
        "t",
        "last",
        "first",
        &[("a", "age_years")],
        json!([
            {"_id": "1", "a": "> 1", "o": "\"decline\"", "r": "\"credit.overdue\""}
        ]),
    ));
    edges.push((from.0, "t".to_owned(), from.1));
    edges.push(("t".to_owned(), "out".to_owned(), None));
    let edges: Vec<(&str, &str, Option<&str>)> = edges
        .iter()
        .map(|(a, b, h)| (a.as_str(), b.as_str(), h.as_deref()))
        .collect();
    let problems = refused(&model(nodes, &edges));
    assert!(
        problems.iter().any(|(_, c, _)| c == "jdm.too_large"),
        "{problems:#?}"
    );
    let many: Vec<Value> = (0..250)
        .map(|i| json!({"id": format!("n{i}"), "type": "outputNode"}))
        .collect();
    assert_eq!(
        refused(&json!({"nodes": many, "edges": []}))[0].1,
        "jdm.too_large"
    );
}

#[test]
fn a_field_map_names_features_the_paths_do_not() {
    let document = model(
        vec![table(
            "t",
            "t",
            "first",
            &[("a", "customer.age")],
            json!([
                {"_id": "1", "a": "< 18", "o": "\"decline\"", "r": "\"policy.regulatory_limit\""}
            ]),
        )],
        &[("in", "t", None), ("t", "out", None)],
    );
    assert_eq!(refused(&document)[0].1, "jdm.unknown_field");
    let fields = [("customer.age".to_owned(), Feature::AgeYears)].into();
    let got = import(&document, Stage::Application, &fields).unwrap();
    assert_eq!(
        got.tables[0].rules[0].when.keys().collect::<Vec<_>>(),
        ["age_years"]
    );
}
