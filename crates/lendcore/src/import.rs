//! `lendcore policy import`: a JSON Decision Model from the GoRules editor turned into a
//! policy's decision tables at one stage (`domain/src/decision/jdm`), put into a policy
//! document and validated with the rest of it; the result is ready to author with
//! `POST /v1/policies`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use lendcore_domain::decision::{Feature, PolicyDocument, Stage};
use lendcore_engine::EngineError;
use lendcore_engine::decisions::{self, ImportedPolicy};

pub struct ImportArgs<'a> {
    pub jdm: &'a Path,
    pub stage: &'a str,
    pub into: &'a Path,
    pub fields: &'a [String],
    pub out: Option<&'a Path>,
}

fn stage(raw: &str) -> anyhow::Result<Stage> {
    serde_json::from_value(serde_json::json!(raw))
        .map_err(|_| anyhow::anyhow!("--stage {raw}: application, drawdown or line_review"))
}

fn fields(raw: &[String]) -> anyhow::Result<BTreeMap<String, Feature>> {
    raw.iter()
        .map(|pair| {
            let (path, name) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--field {pair}: write PATH=FEATURE"))?;
            let feature = Feature::parse(name.trim()).ok_or_else(|| {
                anyhow::anyhow!("--field {pair}: {name} is no lendcore feature (GET /v1/features)")
            })?;
            Ok((path.trim().to_owned(), feature))
        })
        .collect()
}

/// The policy with the model's tables in it, validated, as the API's import gives it.
pub fn imported_policy(
    model: &serde_json::Value,
    stage: Stage,
    fields: &BTreeMap<String, Feature>,
    into: PolicyDocument,
) -> anyhow::Result<ImportedPolicy> {
    decisions::import_jdm(model, stage, fields, into).map_err(|e| match e {
        EngineError::Invalid(violations) => anyhow::anyhow!(
            "the model cannot be imported into this policy:\n{}",
            violations
                .all()
                .iter()
                .map(|v| format!("  {} [{}]: {}", v.field, v.code, v.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => anyhow::anyhow!(other),
    })
}

pub fn import(args: ImportArgs<'_>) -> anyhow::Result<()> {
    let stage = stage(args.stage)?;
    let fields = fields(args.fields)?;
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(args.jdm)
            .with_context(|| format!("reading {}", args.jdm.display()))?,
    )
    .with_context(|| format!("{} is not JSON", args.jdm.display()))?;
    let into: PolicyDocument = serde_json::from_str(
        &std::fs::read_to_string(args.into)
            .with_context(|| format!("reading {}", args.into.display()))?,
    )
    .with_context(|| format!("{} is not a policy document", args.into.display()))?;
    let imported = imported_policy(&model, stage, &fields, into)?;
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    for name in &imported.tables {
        let rows = imported
            .document
            .tables
            .iter()
            .find(|t| t.stage == stage && &t.name == name)
            .map_or(0, |t| t.rules.len());
        eprintln!("imported {} table {name:?}: {rows} rows", stage.as_str());
    }
    let text = serde_json::to_string_pretty(&imported.document)?;
    match args.out {
        Some(path) => std::fs::write(path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lendcore_domain::decision::DEFAULT_POLICY;

    const MODEL: &str = include_str!("../../domain/tests/jdm/line-review.json");

    fn default_policy() -> PolicyDocument {
        serde_json::from_str(DEFAULT_POLICY).unwrap()
    }

    #[test]
    fn the_example_model_imports_into_the_default_policy() {
        let model: serde_json::Value = serde_json::from_str(MODEL).unwrap();
        let imported = imported_policy(
            &model,
            Stage::LineReview,
            &BTreeMap::new(),
            default_policy(),
        )
        .unwrap();
        let document = imported.document;
        let names: Vec<&str> = imported.tables.iter().map(String::as_str).collect();
        assert!(!names.is_empty());
        for name in names {
            assert_eq!(
                document
                    .tables
                    .iter()
                    .filter(|t| t.stage == Stage::LineReview && t.name == name)
                    .count(),
                1,
                "{name} is in the policy once"
            );
        }
        // Imported twice: the tables are replaced, not repeated.
        let again = imported_policy(
            &model,
            Stage::LineReview,
            &BTreeMap::new(),
            document.clone(),
        )
        .unwrap();
        assert_eq!(again.document.tables.len(), document.tables.len());
    }

    #[test]
    fn a_model_for_another_stage_or_a_bad_field_map_is_refused() {
        let model: serde_json::Value = serde_json::from_str(MODEL).unwrap();
        let wrong = imported_policy(
            &model,
            Stage::Application,
            &BTreeMap::new(),
            default_policy(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            wrong.contains("not known at the application decision"),
            "{wrong}"
        );
        assert!(fields(&["a.b".to_owned()]).is_err());
        assert!(fields(&["a.b=shoe_size".to_owned()]).is_err());
        assert_eq!(
            fields(&["a.b = age_years".to_owned()]).unwrap(),
            [("a.b".to_owned(), Feature::AgeYears)].into()
        );
        assert!(stage("review").is_err());
    }
}
