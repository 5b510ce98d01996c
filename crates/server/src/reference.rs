//! The API reference page, rendered on the server from our own OpenAPI document: no script, no
//! external asset, always in step with the routes because it is made from the same document.

use askama::Template;
use serde_json::Value;

#[derive(Template)]
#[template(path = "reference.html")]
pub struct ReferencePage {
    pub title: String,
    pub version: String,
    pub description: String,
    pub operations: Vec<Operation>,
    pub schemas: Vec<SchemaView>,
}

pub struct Operation {
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub tag: String,
    pub summary: String,
    pub description: String,
    pub params: Vec<Field>,
    pub request_body: Option<TypeRef>,
    pub responses: Vec<ResponseView>,
}

pub struct ResponseView {
    pub status: String,
    pub description: String,
    pub body: Option<TypeRef>,
}

pub struct SchemaView {
    pub name: String,
    pub description: String,
    pub fields: Vec<Field>,
    /// For schemas that are not objects: an enum's values or the type.
    pub shape: String,
}

pub struct Field {
    pub name: String,
    /// `path`, `query`, `header` for parameters; empty for schema properties.
    pub location: String,
    pub required: bool,
    pub ty: TypeRef,
    pub description: String,
}

/// A type as text, with a link when it names a schema on the page.
pub struct TypeRef {
    pub text: String,
    pub link: Option<String>,
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl ReferencePage {
    pub fn from_openapi(doc: &Value) -> Self {
        let info = &doc["info"];
        let mut operations = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                operations.push(operation(path, method, op));
            }
        }
        let schemas = doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, schema)| schema_view(name, schema))
            .collect();
        Self {
            title: text(&info["title"]),
            version: text(&info["version"]),
            description: text(&info["description"]),
            operations,
            schemas,
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn operation(path: &str, method: &str, op: &Value) -> Operation {
    let params = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Field {
            name: text(&p["name"]),
            location: text(&p["in"]),
            required: p["required"].as_bool().unwrap_or(false),
            ty: describe(&p["schema"]),
            description: text(&p["description"]),
        })
        .collect();
    let request_body = op["requestBody"]["content"]
        .as_object()
        .and_then(|c| c.values().next())
        .map(|media| describe(&media["schema"]));
    let responses = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, r)| ResponseView {
            status: status.clone(),
            description: text(&r["description"]),
            body: r["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .filter(|media| !media["schema"].is_null())
                .map(|media| describe(&media["schema"])),
        })
        .collect();
    let summary = text(&op["summary"]);
    Operation {
        anchor: format!("{method}-{}", path.replace(['/', '{', '}'], "-")),
        method: method.to_uppercase(),
        path: path.to_owned(),
        tag: op["tags"][0].as_str().unwrap_or("other").to_owned(),
        description: text(&op["description"]),
        summary,
        params,
        request_body,
        responses,
    }
}

fn schema_view(name: &str, schema: &Value) -> SchemaView {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut fields: Vec<Field> = Vec::new();
    let mut collect = |s: &Value| {
        for (field, prop) in s["properties"].as_object().into_iter().flatten() {
            fields.push(Field {
                name: field.clone(),
                location: String::new(),
                required: required.contains(&field.as_str())
                    || s["required"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|x| x == field)),
                ty: describe(prop),
                description: text(&prop["description"]),
            });
        }
    };
    collect(schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        collect(part);
    }
    let shape = if fields.is_empty() {
        describe(schema).text
    } else {
        String::new()
    };
    SchemaView {
        name: name.to_owned(),
        description: text(&schema["description"]),
        fields,
        shape,
    }
}

/// A schema in words: `ProductView`, `array of integer (int32)`, `one of: month, day`.
fn describe(schema: &Value) -> TypeRef {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference).to_owned();
        return TypeRef {
            link: Some(format!("#schema-{name}")),
            text: name,
        };
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let described: Vec<TypeRef> = parts
                .iter()
                .filter(|p| p["type"] != "null")
                .map(describe)
                .collect();
            let nullable = parts.iter().any(|p| p["type"] == "null");
            let link = described.iter().find_map(|d| d.link.clone());
            let mut text = described
                .into_iter()
                .map(|d| d.text)
                .collect::<Vec<_>>()
                .join(" | ");
            if nullable {
                text.push_str(" or null");
            }
            return TypeRef { text, link };
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        return TypeRef {
            text: format!("one of: {}", values.join(", ")),
            link: None,
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let nullable = types.contains(&"null");
    let main = types
        .iter()
        .find(|t| **t != "null")
        .copied()
        .unwrap_or("any");
    let mut out = match main {
        "array" => {
            let inner = describe(&schema["items"]);
            TypeRef {
                text: format!("array of {}", inner.text),
                link: inner.link,
            }
        }
        other => {
            let format = schema["format"]
                .as_str()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            TypeRef {
                text: format!("{other}{format}"),
                link: None,
            }
        }
    };
    if nullable {
        out.text.push_str(" or null");
    }
    out
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub version: &'static str,
}

/// The page a link lendcore sends points at when no app of the lender's takes it (the demo).
#[derive(Template)]
#[template(path = "link.html")]
pub struct LinkPage;
