//! Every response the API tests receive is checked against what `/openapi.json` declares for
//! its operation and status, so the document lenders generate clients from cannot drift from
//! what the server sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

struct Contract {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn fail(message: String) {
    panic!("{message}");
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        doc: serde_json::to_value(lendcore_server::openapi()).expect("the document serialises"),
        validators: Mutex::new(HashMap::new()),
    })
}

/// The documented path template `path` (without its query) falls under: the one with the
/// fewest parameters, so `/v1/drawdowns/quotes` is not taken for `/v1/drawdowns/{id}`.
fn template<'a>(paths: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or_default();
    let actual: Vec<&str> = path.split('/').collect();
    paths
        .keys()
        .filter(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == actual.len()
                && parts
                    .iter()
                    .zip(&actual)
                    .all(|(t, a)| (t.starts_with('{') && !a.is_empty()) || t == a)
        })
        .min_by_key(|template| template.matches('{').count())
        .map(String::as_str)
}

/// Panics when the response to `method path` is not what the document declares: a status it
/// does not list, or a body its schema refuses.
pub fn check(method: &str, path: &str, status: u16, body: &Value) {
    // The document itself and the pages rendered from it are not API operations.
    if matches!(path, "/" | "/openapi.json" | "/docs/api" | "/links/open") {
        return;
    }
    let contract = contract();
    let paths = contract.doc["paths"].as_object().expect("paths");
    let Some(template) = template(paths, path) else {
        // Only the answers to routes that do not exist are undocumented.
        if !matches!(status, 404 | 405) {
            fail(format!(
                "{method} {path}: {status} from a route the document does not have"
            ));
        }
        return;
    };
    let Some(operation) = paths[template].get(method.to_ascii_lowercase()) else {
        if status != 405 {
            fail(format!(
                "{method} {path}: answered {status} for a method not documented"
            ));
        }
        return;
    };
    let Some(response) = operation["responses"].get(status.to_string()) else {
        return fail(format!(
            "{method} {template} answered {status}, which the document does not list: {body}"
        ));
    };
    let Some(schema) = response
        .pointer("/content/application~1json/schema")
        .cloned()
    else {
        return;
    };
    let key = format!("{method} {template} {status}");
    let validator = {
        let mut validators = contract.validators.lock().unwrap();
        validators
            .entry(key.clone())
            .or_insert_with(|| {
                let mut root = match schema {
                    Value::Object(map) => map,
                    other => panic!("{key}: schema is not an object: {other}"),
                };
                root.insert("components".to_owned(), contract.doc["components"].clone());
                let root = Value::Object(root);
                Arc::new(
                    jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft202012)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("{key}: the schema does not compile: {e}")),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        fail(format!(
            "{key}: the body does not match its schema:\n{}\nbody: {body}",
            errors.join("\n")
        ));
    }
}
