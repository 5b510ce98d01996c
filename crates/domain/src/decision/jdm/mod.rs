//! Policies from the GoRules editor: a JSON Decision Model (JDM) turned into a policy's
//! decision tables at one stage, compiled like any other (so it is evaluated natively, never
//! interpreted from JSON per call).
//!
//! What imports: one input node; output nodes; decision tables (hit policy `first` or
//! `collect`) whose input columns read lendcore features (by the last segment of a dotted
//! path, or as `fields` maps them) with unary tests, and whose output columns are a rule's
//! parts (`outcome`, `reason`, `warning`, `percent`, `note`, by the last segment of their
//! path); switch nodes (`first` or `collect`) whose conditions are conjunctions of comparisons;
//! expression nodes that set a rule's parts to constants (a rule that fires when its branch is
//! taken). Tables and expression nodes hang off the input or a switch branch and lead to
//! outputs; switches hang off the input or another switch. A branch's condition is folded into
//! the rows of what it leads to. Anything else is refused with the node's name and why.

mod expr;
mod guard;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::Stage;
use super::features::Feature;
use super::policy::{HitPolicy, PolicyDocument, RuleInput, RuleOutcome, TableInput};
use crate::reasons::Reason;
use crate::validation::{Collector, Violations};
use guard::Piece;

/// The most rows one imported table may become once branch conditions are folded in.
const MAX_IMPORTED_ROWS: usize = 500;
/// The most nodes, and statements of one switch, a model may have: an import is work done
/// per request, bounded before it starts.
const MAX_NODES: usize = 200;
const MAX_STATEMENTS: usize = 50;
/// The most pieces a branch's condition may become while it is worked out.
const MAX_PIECES: usize = 2_000;

#[derive(Debug, Deserialize)]
struct Model {
    nodes: Vec<Node>,
    #[serde(default)]
    edges: Vec<Edge>,
}

#[derive(Debug, Deserialize)]
struct Node {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Edge {
    source_id: String,
    target_id: String,
    #[serde(default)]
    source_handle: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableContent {
    hit_policy: String,
    inputs: Vec<Column>,
    outputs: Vec<Column>,
    rules: Vec<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct Column {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    field: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SwitchContent {
    #[serde(default = "first")]
    hit_policy: String,
    statements: Vec<Statement>,
}

fn first() -> String {
    "first".to_owned()
}

#[derive(Debug, Deserialize)]
struct Statement {
    id: String,
    #[serde(default)]
    condition: String,
}

#[derive(Debug, Deserialize)]
struct ExpressionContent {
    expressions: Vec<Expression>,
}

#[derive(Debug, Deserialize)]
struct Expression {
    key: String,
    value: String,
}

/// What an import made: the tables, in the model's order, and notes for the person importing.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub tables: Vec<TableInput>,
    pub notes: Vec<String>,
}

/// Turns a JDM document into decision tables at `stage`. `fields` maps input paths to
/// features where the last segment does not name one. Every problem of the model is reported
/// at once.
pub fn import(
    document: &serde_json::Value,
    stage: Stage,
    fields: &BTreeMap<String, Feature>,
) -> Result<Imported, Violations> {
    let mut found = Collector::default();
    let model: Model = match serde_json::from_value(document.clone()) {
        Ok(model) => model,
        Err(e) => {
            found.add(
                "jdm",
                "jdm.invalid",
                format!("not a JSON Decision Model: {e}"),
            );
            return found.finish(None);
        }
    };
    if model.nodes.len() > MAX_NODES || model.edges.len() > MAX_NODES * 4 {
        found.add(
            "nodes",
            "jdm.too_large",
            format!("a model of at most {MAX_NODES} nodes is imported"),
        );
        return found.finish(None);
    }
    let importer = Importer {
        model: &model,
        stage,
        fields,
        guards: RefCell::new(BTreeMap::new()),
    };
    let imported = importer.run(&mut found);
    found.finish(imported)
}

/// The document with `tables` in place of its tables of the same stage and name (others
/// kept), added after them.
pub fn merge(mut document: PolicyDocument, tables: Vec<TableInput>) -> PolicyDocument {
    let replaced: BTreeSet<(Stage, String)> =
        tables.iter().map(|t| (t.stage, t.name.clone())).collect();
    document
        .tables
        .retain(|t| !replaced.contains(&(t.stage, t.name.clone())));
    document.tables.extend(tables);
    document
}

struct Importer<'a> {
    model: &'a Model,
    stage: Stage,
    fields: &'a BTreeMap<String, Feature>,
    /// Each node's guard once worked out (`None` when it could not be): a switch feeding many
    /// nodes is worked out once.
    guards: RefCell<BTreeMap<String, Option<Vec<Piece>>>>,
}

/// How a node is reached: from the input, or a switch statement's branch.
#[derive(Clone, Copy)]
struct Via<'a> {
    from: &'a Node,
    handle: Option<&'a str>,
}

impl<'a> Importer<'a> {
    fn at(&self, node: &Node) -> String {
        let index = self
            .model
            .nodes
            .iter()
            .position(|n| std::ptr::eq(n, node))
            .unwrap_or(0);
        format!("nodes[{index}]")
    }

    fn named(node: &Node) -> String {
        if node.name.is_empty() {
            format!("node {}", node.id)
        } else {
            format!("node “{}”", node.name)
        }
    }

    /// A node's content as its kind has it; refused as invalid otherwise.
    fn content<T: serde::de::DeserializeOwned>(
        node: &Node,
        at: &str,
        what: &str,
        found: &mut Collector,
    ) -> Option<T> {
        match serde_json::from_value(node.content.clone()) {
            Ok(content) => Some(content),
            Err(e) => {
                found.add(
                    at,
                    "jdm.invalid",
                    format!("{} is not {what}: {e}", Self::named(node)),
                );
                None
            }
        }
    }

    fn node(&self, id: &str) -> Option<&'a Node> {
        self.model.nodes.iter().find(|n| n.id == id)
    }

    fn incoming(&self, node: &Node) -> Vec<Via<'a>> {
        self.model
            .edges
            .iter()
            .filter(|e| e.target_id == node.id)
            .filter_map(|e| {
                self.node(&e.source_id).map(|from| Via {
                    from,
                    handle: e.source_handle.as_deref(),
                })
            })
            .collect()
    }

    fn outgoing(&self, node: &Node) -> Vec<&'a Node> {
        self.model
            .edges
            .iter()
            .filter(|e| e.source_id == node.id)
            .filter_map(|e| self.node(&e.target_id))
            .collect()
    }

    fn run(&self, found: &mut Collector) -> Option<Imported> {
        let inputs = self
            .model
            .nodes
            .iter()
            .filter(|n| n.kind == "inputNode")
            .count();
        if inputs != 1 {
            found.add(
                "nodes",
                "jdm.unsupported_graph",
                format!("a model has one input node; this one has {inputs}"),
            );
        }
        for edge in &self.model.edges {
            for end in [&edge.source_id, &edge.target_id] {
                if self.node(end).is_none() {
                    found.add(
                        "edges",
                        "jdm.unsupported_graph",
                        format!("an edge names node {end}, which the model does not have"),
                    );
                }
            }
        }
        let mut tables = Vec::new();
        let mut notes = Vec::new();
        let mut names = BTreeSet::new();
        for node in &self.model.nodes {
            let at = self.at(node);
            let made = match node.kind.as_str() {
                "inputNode" | "outputNode" => continue,
                // Checked where its branches lead, as part of what they lead to.
                "switchNode" => continue,
                "decisionTableNode" => self.table(node, &at, found, &mut notes),
                "expressionNode" => self.expression(node, &at, found),
                "functionNode" => {
                    found.add(
                        &at,
                        "jdm.unsupported_node",
                        format!(
                            "{} runs JavaScript: a policy is data lendcore can check for gaps \
                             and replay, so write it as a decision table",
                            Self::named(node)
                        ),
                    );
                    None
                }
                "decisionNode" => {
                    found.add(
                        &at,
                        "jdm.unsupported_node",
                        format!(
                            "{} calls another decision: import that model's tables into the \
                             same policy instead",
                            Self::named(node)
                        ),
                    );
                    None
                }
                other => {
                    found.add(
                        &at,
                        "jdm.unsupported_node",
                        format!(
                            "{} is a {other}, which lendcore does not import",
                            Self::named(node)
                        ),
                    );
                    None
                }
            };
            if let Some(table) = made {
                if !names.insert(table.name.clone()) {
                    found.add(
                        format!("{at}.name"),
                        "jdm.duplicate_name",
                        format!(
                            "another node is named {:?}: tables need names of their own",
                            table.name
                        ),
                    );
                }
                if table.rules.is_empty() {
                    notes.push(format!(
                        "{} can never fire (no row survives its branch's condition); it is left out",
                        Self::named(node)
                    ));
                } else {
                    tables.push(table);
                }
            }
        }
        Some(Imported { tables, notes })
    }

    /// The inputs that reach `node`: from the input node (everything) or through switch
    /// branches. `None` when the node hangs off something else.
    fn guard_within(
        &self,
        node: &Node,
        at: &str,
        found: &mut Collector,
        depth: usize,
    ) -> Option<Vec<Piece>> {
        if let Some(known) = self.guards.borrow().get(&node.id) {
            return known.clone();
        }
        let worked = self.guard_uncached(node, at, found, depth);
        self.guards
            .borrow_mut()
            .insert(node.id.clone(), worked.clone());
        worked
    }

    fn guard_uncached(
        &self,
        node: &Node,
        at: &str,
        found: &mut Collector,
        depth: usize,
    ) -> Option<Vec<Piece>> {
        if depth > self.model.nodes.len() {
            found.add(
                at,
                "jdm.unsupported_graph",
                format!("{} is on a cycle", Self::named(node)),
            );
            return None;
        }
        let incoming = self.incoming(node);
        if incoming.is_empty() {
            found.add(
                at,
                "jdm.unsupported_graph",
                format!("nothing leads to {}", Self::named(node)),
            );
            return None;
        }
        let mut guard: Vec<Piece> = Vec::new();
        for via in incoming {
            let reach = match via.from.kind.as_str() {
                "inputNode" => vec![Piece::new()],
                "switchNode" => {
                    let before = self.guard_within(via.from, at, found, depth + 1)?;
                    let branch = self.branch(via.from, via.handle, found)?;
                    guard::meet(&before, &branch)
                }
                _ => {
                    found.add(
                        at,
                        "jdm.unsupported_graph",
                        format!(
                            "{} takes its input from {}: lendcore imports tables and \
                             expressions fed by the input or a switch, whose values are features",
                            Self::named(node),
                            Self::named(via.from)
                        ),
                    );
                    return None;
                }
            };
            // Two edges in: the node runs once if either is taken, so add only what the first
            // did not already cover.
            let mut fresh = reach;
            for piece in &guard {
                fresh = fresh
                    .iter()
                    .flat_map(|p| {
                        guard::negate(piece)
                            .into_iter()
                            .filter_map(move |n| guard::intersect(p, &n))
                    })
                    .collect();
            }
            guard.extend(fresh);
            if guard.len() > MAX_PIECES {
                return self.too_many(node, at, found);
            }
        }
        Some(guard)
    }

    fn too_many(&self, node: &Node, at: &str, found: &mut Collector) -> Option<Vec<Piece>> {
        found.add(
            at,
            "jdm.too_large",
            format!(
                "the conditions that lead to {} come to more than {MAX_PIECES} cases: \
                 simplify the switches before it",
                Self::named(node)
            ),
        );
        None
    }

    /// The inputs a switch sends down the branch of statement `handle`.
    fn branch(
        &self,
        switch: &Node,
        handle: Option<&str>,
        found: &mut Collector,
    ) -> Option<Vec<Piece>> {
        let at = self.at(switch);
        let content: SwitchContent = Self::content(switch, &at, "a switch node", found)?;
        let first = match content.hit_policy.as_str() {
            "first" => true,
            "collect" => false,
            other => {
                found.add(
                    format!("{at}.content.hitPolicy"),
                    "jdm.unsupported_node",
                    format!(
                        "{} has hit policy {other}: first or collect",
                        Self::named(switch)
                    ),
                );
                return None;
            }
        };
        if content.statements.len() > MAX_STATEMENTS {
            found.add(
                format!("{at}.content.statements"),
                "jdm.too_large",
                format!(
                    "{} has {} statements; at most {MAX_STATEMENTS}",
                    Self::named(switch),
                    content.statements.len()
                ),
            );
            return None;
        }
        let Some(position) = content
            .statements
            .iter()
            .position(|s| Some(s.id.as_str()) == handle)
        else {
            found.add(
                &at,
                "jdm.unsupported_graph",
                format!(
                    "an edge leaves {} from no statement of it",
                    Self::named(switch)
                ),
            );
            return None;
        };
        let mut guard = vec![Piece::new()];
        for (i, statement) in content.statements.iter().enumerate().take(position + 1) {
            let pieces = self.condition(switch, i, &statement.condition, found)?;
            if i == position {
                guard = guard::meet(&guard, &pieces);
            } else if first {
                // Reached only when every earlier statement was false.
                for piece in &pieces {
                    guard = guard::meet(&guard, &guard::negate(piece));
                }
            }
            if guard.len() > MAX_PIECES {
                return self.too_many(switch, &at, found);
            }
        }
        Some(guard)
    }

    fn condition(
        &self,
        switch: &Node,
        index: usize,
        source: &str,
        found: &mut Collector,
    ) -> Option<Vec<Piece>> {
        let at = format!("{}.content.statements[{index}].condition", self.at(switch));
        let parsed = match expr::condition(source) {
            Ok(p) => p,
            Err(why) => {
                found.add(
                    at,
                    "jdm.unsupported_expression",
                    format!("{}: {why}", Self::named(switch)),
                );
                return None;
            }
        };
        let atoms = match parsed {
            expr::Condition::Always => return Some(vec![Piece::new()]),
            expr::Condition::Never => return Some(Vec::new()),
            expr::Condition::All(atoms) => atoms,
        };
        let mut piece = Piece::new();
        for atom in atoms {
            let (path, set) = match &atom {
                expr::Atom::Compare { path, op, value } => {
                    let feature = self.feature(path, switch, &at, found)?;
                    (
                        path,
                        guard::compare(feature, *op, value).map(|s| (feature, s)),
                    )
                }
                expr::Atom::OneOf {
                    path,
                    values,
                    negated,
                } => {
                    let feature = self.feature(path, switch, &at, found)?;
                    let tests: Vec<expr::Test> = values
                        .iter()
                        .map(|v| expr::Test::Compare(expr::Op::Eq, v.clone()))
                        .collect();
                    let set = guard::unary(feature, &tests).map(|inside| {
                        if *negated {
                            let full = super::sets::Set::full(feature);
                            let mut outside = full.minus(&inside);
                            outside.missing = full.missing;
                            outside
                        } else {
                            inside
                        }
                    });
                    (path, set.map(|s| (feature, s)))
                }
            };
            match set {
                Ok((feature, set)) => {
                    let one: Piece = [(feature, set)].into();
                    match guard::intersect(&piece, &one) {
                        Some(both) => piece = both,
                        None => return Some(Vec::new()),
                    }
                }
                Err(why) => {
                    found.add(
                        &at,
                        "jdm.type_mismatch",
                        format!("{}: {path}: {why}", Self::named(switch)),
                    );
                    return None;
                }
            }
        }
        Some(vec![piece])
    }

    fn feature(&self, path: &str, node: &Node, at: &str, found: &mut Collector) -> Option<Feature> {
        let by_map = self.fields.get(path).copied();
        let last = path.rsplit('.').next().unwrap_or(path);
        match by_map.or_else(|| Feature::parse(last)) {
            Some(feature) if feature.is_known_at(self.stage) => Some(feature),
            Some(feature) => {
                found.add(
                    at,
                    "jdm.unknown_field",
                    format!(
                        "{}: {path} reads {}, which is not known at the {} decision",
                        Self::named(node),
                        feature.name(),
                        self.stage.as_str()
                    ),
                );
                None
            }
            None => {
                found.add(
                    at,
                    "jdm.unknown_field",
                    format!(
                        "{}: {path} names no lendcore feature (GET /v1/features lists them; \
                         map a field to one with --field PATH=FEATURE)",
                        Self::named(node)
                    ),
                );
                None
            }
        }
    }

    /// The node's outgoing edges lead to outputs only, and to one at least.
    fn leads_to_outputs(&self, node: &Node, at: &str, found: &mut Collector) {
        let outgoing = self.outgoing(node);
        if outgoing.is_empty() {
            found.add(
                at,
                "jdm.unsupported_graph",
                format!(
                    "{} leads nowhere: GoRules' engine ignores it, so it would decide here and not \
                     there; connect it to an output or delete it",
                    Self::named(node)
                ),
            );
        }
        for next in outgoing {
            if next.kind != "outputNode" {
                found.add(
                    at,
                    "jdm.unsupported_graph",
                    format!(
                        "{} feeds {}: an imported rule's result goes to an output",
                        Self::named(node),
                        Self::named(next)
                    ),
                );
            }
        }
    }

    fn table(
        &self,
        node: &Node,
        at: &str,
        found: &mut Collector,
        notes: &mut Vec<String>,
    ) -> Option<TableInput> {
        let guard = self.guard_within(node, at, found, 0);
        self.leads_to_outputs(node, at, found);
        let content: TableContent = Self::content(node, at, "a decision table", found)?;
        let hit = match content.hit_policy.as_str() {
            "first" => HitPolicy::First,
            "collect" => HitPolicy::Collect,
            other => {
                found.add(
                    format!("{at}.content.hitPolicy"),
                    "jdm.unsupported_node",
                    format!(
                        "{} has hit policy {other}: first or collect",
                        Self::named(node)
                    ),
                );
                return None;
            }
        };
        let mut columns = Vec::new();
        for (i, input) in content.inputs.iter().enumerate() {
            let column_at = format!("{at}.content.inputs[{i}]");
            match &input.field {
                Some(field) if !field.trim().is_empty() => {
                    if let Some(feature) = self.feature(field.trim(), node, &column_at, found) {
                        columns.push((input.id.as_str(), feature));
                    }
                }
                _ => found.add(
                    column_at,
                    "jdm.unsupported_expression",
                    format!(
                        "{}: column {:?} tests an expression, not a field: give it the field it reads",
                        Self::named(node),
                        input.name
                    ),
                ),
            }
        }
        let mut parts = Vec::new();
        for (i, output) in content.outputs.iter().enumerate() {
            let field = output.field.as_deref().unwrap_or_default();
            match Part::of(field) {
                Some(part) => parts.push((output.id.as_str(), part)),
                None => found.add(
                    format!("{at}.content.outputs[{i}]"),
                    "jdm.unknown_output",
                    format!(
                        "{}: output {field:?} is none of a rule's parts (outcome, reason, \
                         warning, percent, note, as the last segment of the path)",
                        Self::named(node)
                    ),
                ),
            }
        }
        let guard = guard?;
        let dashes = content.rules.iter().any(|row| {
            columns
                .iter()
                .any(|(id, _)| row.get(*id).and_then(|v| v.as_str()).map(str::trim) == Some("-"))
        });
        if dashes {
            notes.push(format!(
                "{}: `-` cells are read as any value, as DMN and the GoRules editor's display mean \
                 them; GoRules' zen-engine matches nothing with a `-` cell, so leave such cells \
                 empty for the model to decide alike in both",
                Self::named(node)
            ));
        }
        let mut rules = Vec::new();
        for (r, row) in content.rules.iter().enumerate() {
            let row_at = format!("{at}.content.rules[{r}]");
            let mut piece = Piece::new();
            let mut empty = false;
            for (id, feature) in &columns {
                let cell = row.get(*id).and_then(|v| v.as_str()).unwrap_or_default();
                let tests = match expr::unary(cell) {
                    Ok(t) => t,
                    Err(why) => {
                        found.add(
                            &row_at,
                            "jdm.unsupported_expression",
                            format!("{}, row {}: {why}", Self::named(node), r + 1),
                        );
                        continue;
                    }
                };
                match guard::unary(*feature, &tests) {
                    Ok(set) => {
                        let one: Piece = [(*feature, set)].into();
                        match guard::intersect(&piece, &one) {
                            Some(both) => piece = both,
                            None => empty = true,
                        }
                    }
                    Err(why) => found.add(
                        &row_at,
                        "jdm.type_mismatch",
                        format!("{}, row {}: {why}", Self::named(node), r + 1),
                    ),
                }
            }
            let Some(rule) = self.rule(node, r, row, &parts, &row_at, found) else {
                continue;
            };
            if empty {
                continue;
            }
            for reach in guard::meet(&guard, &[piece]) {
                for when in guard::rows(&reach) {
                    rules.push(RuleInput {
                        when,
                        ..rule.clone()
                    });
                }
            }
        }
        if rules.len() > MAX_IMPORTED_ROWS {
            found.add(
                at,
                "jdm.too_large",
                format!(
                    "{} becomes {} rows with its branch conditions folded in; at most {MAX_IMPORTED_ROWS}",
                    Self::named(node),
                    rules.len()
                ),
            );
            return None;
        }
        Some(TableInput {
            name: self.table_name(node),
            stage: self.stage,
            hit,
            complete: false,
            rules,
        })
    }

    fn table_name(&self, node: &Node) -> String {
        if node.name.trim().is_empty() {
            node.id.clone()
        } else {
            node.name.trim().to_owned()
        }
    }

    /// A row's outputs as a rule (its `when` filled in later).
    fn rule(
        &self,
        node: &Node,
        r: usize,
        row: &BTreeMap<String, serde_json::Value>,
        parts: &[(&str, Part)],
        at: &str,
        found: &mut Collector,
    ) -> Option<RuleInput> {
        let mut values = Vec::new();
        for (id, part) in parts {
            let source = row.get(*id).and_then(|v| v.as_str()).unwrap_or_default();
            if source.trim().is_empty() {
                continue;
            }
            values.push((*part, source.to_owned()));
        }
        let described = row
            .get("_description")
            .and_then(|v| v.as_str())
            .filter(|d| !d.trim().is_empty())
            .map(str::to_owned);
        self.rule_of(
            node,
            &format!("row {}", r + 1),
            &values,
            described,
            at,
            found,
        )
    }

    fn rule_of(
        &self,
        node: &Node,
        what: &str,
        values: &[(Part, String)],
        described: Option<String>,
        at: &str,
        found: &mut Collector,
    ) -> Option<RuleInput> {
        let mut rule = RuleInput {
            when: BTreeMap::new(),
            outcome: RuleOutcome::Warn,
            reason: None,
            warning: None,
            percent: None,
            note: described,
        };
        let mut outcome = None;
        let mut bad = |why: String| {
            found.add(
                at,
                "jdm.invalid_output",
                format!("{}, {what}: {why}", Self::named(node)),
            );
        };
        for (part, source) in values {
            let value = match expr::unary(source).ok().as_deref() {
                Some([expr::Test::Compare(expr::Op::Eq, literal)]) => literal.clone(),
                _ => {
                    bad(format!("{source} is not a constant"));
                    return None;
                }
            };
            let text = match &value {
                expr::Literal::Text(t) => Some(t.clone()),
                expr::Literal::Number(_) | expr::Literal::Flag(_) => None,
            };
            match part {
                Part::Outcome => {
                    outcome = text
                        .as_deref()
                        .and_then(|t| serde_json::from_value(serde_json::json!(t)).ok());
                    if outcome.is_none() {
                        bad(format!(
                            "{source} is no rule outcome (decline, refer, hold, warn, …)"
                        ));
                        return None;
                    }
                }
                Part::Reason => match text.as_deref().and_then(Reason::parse) {
                    Some(reason) => rule.reason = Some(reason),
                    None => {
                        bad(format!("{source} is no reason code of the catalogue"));
                        return None;
                    }
                },
                Part::Warning => {
                    rule.warning = text
                        .as_deref()
                        .and_then(|t| serde_json::from_value(serde_json::json!(t)).ok());
                    if rule.warning.is_none() {
                        bad(format!("{source} is no warning lendcore gives"));
                        return None;
                    }
                }
                Part::Percent => match &value {
                    expr::Literal::Number(n) if n.fract().is_zero() => {
                        rule.percent = u32::try_from(*n).ok();
                        if rule.percent.is_none() {
                            bad(format!("{source} is not a whole percent"));
                            return None;
                        }
                    }
                    _ => {
                        bad(format!("{source} is not a whole percent"));
                        return None;
                    }
                },
                Part::Note => match text {
                    Some(t) => rule.note = Some(t),
                    None => {
                        bad(format!("{source} is not text"));
                        return None;
                    }
                },
            }
        }
        match outcome {
            Some(outcome) => {
                rule.outcome = outcome;
                Some(rule)
            }
            None => {
                bad("gives no outcome".to_owned());
                None
            }
        }
    }

    fn expression(&self, node: &Node, at: &str, found: &mut Collector) -> Option<TableInput> {
        let guard = self.guard_within(node, at, found, 0);
        self.leads_to_outputs(node, at, found);
        let content: ExpressionContent = Self::content(node, at, "an expression node", found)?;
        let mut values = Vec::new();
        for (i, expression) in content.expressions.iter().enumerate() {
            match Part::of(&expression.key) {
                Some(part) => values.push((part, expression.value.clone())),
                None => found.add(
                    format!("{at}.content.expressions[{i}]"),
                    "jdm.unsupported_expression",
                    format!(
                        "{}: {:?} computes a value lendcore's features do not have; an imported \
                         expression sets a rule's parts (outcome, reason, warning, percent, note) \
                         to constants",
                        Self::named(node),
                        expression.key
                    ),
                ),
            }
        }
        let rule = self.rule_of(node, "its expressions", &values, None, at, found)?;
        let guard = guard?;
        let rules = guard
            .iter()
            .flat_map(guard::rows)
            .map(|when| RuleInput {
                when,
                ..rule.clone()
            })
            .collect();
        Some(TableInput {
            name: self.table_name(node),
            stage: self.stage,
            hit: HitPolicy::First,
            complete: false,
            rules,
        })
    }
}

/// A part of a rule an output column or expression key gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Outcome,
    Reason,
    Warning,
    Percent,
    Note,
}

impl Part {
    fn of(path: &str) -> Option<Part> {
        match path.trim().rsplit('.').next().unwrap_or_default() {
            "outcome" => Some(Part::Outcome),
            "reason" => Some(Part::Reason),
            "warning" => Some(Part::Warning),
            "percent" => Some(Part::Percent),
            "note" => Some(Part::Note),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
