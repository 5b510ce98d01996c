//! Documents uploaded to an application (financial statements, payslips): PDF, JPEG or PNG,
//! 5 MiB at most, twenty per application; sealed at rest, with the SHA-256 of their content,
//! checked again when one is read.

use lendcore_store::StoredDocument;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::load;
use crate::access::Principal;
use crate::{Engine, EngineError, new_id};

pub const MAX_BYTES: usize = 5 * 1024 * 1024;
const MAX_PER_APPLICATION: usize = 20;
const TYPES: [(&str, &[u8]); 3] = [
    ("application/pdf", b"%PDF-"),
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    ("image/png", &[0x89, b'P', b'N', b'G']),
];

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentView {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the content: what the uploader can check their copy against.
    pub sha256: String,
    pub uploaded_by: String,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
}

/// A document's content, checked against its checksum.
pub struct Download {
    pub name: String,
    pub content_type: String,
    pub sha256: String,
    pub content: Vec<u8>,
}

fn view(d: StoredDocument) -> DocumentView {
    DocumentView {
        id: d.id,
        name: d.name,
        content_type: d.content_type,
        size_bytes: d.size_bytes,
        sha256: d.sha256,
        uploaded_by: d.uploaded_by,
        uploaded_at: d.uploaded_at,
    }
}

fn invalid(field: &str, code: &'static str, message: String) -> EngineError {
    EngineError::Invalid(lendcore_domain::validation::Violations::single(
        field, code, message,
    ))
}

/// Stores a document for an application that has not ended. The content must be what its
/// type says (its first bytes are checked), not just labelled so.
pub async fn upload(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    name: &str,
    content_type: &str,
    content: &[u8],
) -> Result<DocumentView, EngineError> {
    let name = name.trim();
    if !(1..=120).contains(&name.chars().count())
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(invalid(
            "name",
            "validation.invalid_document_name",
            "a file name of 1-120 characters, without slashes".into(),
        ));
    }
    let Some((kind, magic)) = TYPES.iter().find(|(t, _)| *t == content_type) else {
        return Err(invalid(
            "content-type",
            "validation.document_type",
            "send a PDF, JPEG or PNG (application/pdf, image/jpeg, image/png)".into(),
        ));
    };
    if content.is_empty() || content.len() > MAX_BYTES {
        return Err(invalid(
            "body",
            "validation.document_size",
            format!("a document is 1 byte to {MAX_BYTES} bytes"),
        ));
    }
    if !content.starts_with(magic) {
        return Err(invalid(
            "body",
            "validation.document_content",
            format!("the content is not a {kind} file"),
        ));
    }
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    let (app, _) = load(uow.as_mut(), principal, id).await?;
    if app.status.is_final() {
        return Err(EngineError::conflict(
            "conflict.application_state",
            format!(
                "the application is {}; documents go to open applications",
                app.status.name()
            ),
        ));
    }
    if uow.list_documents(&app.id).await?.len() >= MAX_PER_APPLICATION {
        return Err(EngineError::conflict(
            "conflict.too_many_documents",
            format!("an application holds at most {MAX_PER_APPLICATION} documents"),
        ));
    }
    let doc_id = new_id();
    let stored = StoredDocument {
        content: engine
            .vault()?
            .seal_bytes(content, &format!("document:{doc_id}"))?,
        id: doc_id,
        application_id: app.id.clone(),
        name: name.to_owned(),
        content_type: (*kind).to_owned(),
        size_bytes: i64::try_from(content.len()).unwrap_or(i64::MAX),
        sha256: hex::encode(Sha256::digest(content)),
        uploaded_by: principal.actor(),
        uploaded_at: now,
    };
    uow.insert_document(&stored).await?;
    crate::audit::record(
        uow.as_mut(),
        &principal.actor(),
        "application.document_uploaded",
        ("application", &app.id),
        serde_json::json!({ "document_id": stored.id, "sha256": stored.sha256, "size_bytes": stored.size_bytes }),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(view(stored))
}

pub async fn list_documents(
    engine: &Engine,
    principal: &Principal,
    id: &str,
) -> Result<Vec<DocumentView>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let (app, _) = load(uow.as_mut(), principal, id).await?;
    Ok(uow
        .list_documents(&app.id)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

pub async fn download(
    engine: &Engine,
    principal: &Principal,
    id: &str,
    document_id: &str,
) -> Result<Download, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let (app, _) = load(uow.as_mut(), principal, id).await?;
    let doc = uow
        .find_document(&app.id, document_id)
        .await?
        .ok_or_else(|| {
            EngineError::not_found(
                "not_found.document",
                "no document with that id on this application",
            )
        })?;
    let content = engine
        .vault()?
        .open_bytes(&doc.content, &format!("document:{}", doc.id))?;
    if hex::encode(Sha256::digest(&content)) != doc.sha256 {
        return Err(EngineError::Internal(format!(
            "document {} does not match its checksum",
            doc.id
        )));
    }
    Ok(Download {
        name: doc.name,
        content_type: doc.content_type,
        sha256: doc.sha256,
        content,
    })
}
