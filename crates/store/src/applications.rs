//! Applications as the store keeps them: the state document, the sealed form, and documents.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::application::Application;

use crate::StoreError;
use crate::sql::from_row;
use crate::time::{from_ms, to_ms};
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

/// An uploaded document; `content` is sealed, `sha256` is of the clear bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub application_id: String,
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    /// Empty when listed; filled when one document is read.
    pub content: String,
    pub uploaded_by: String,
    pub uploaded_at: Timestamp,
}

#[async_trait]
pub trait ApplicationRepository {
    /// [`StoreError::Duplicate`] if the application is open and its owner already has an open
    /// one.
    async fn insert_application(&mut self, app: &Application, form: &str)
    -> Result<(), StoreError>;
    /// Writes an application read at `read_revision` (and its form, when given);
    /// [`StoreError::Stale`] if it changed since.
    async fn update_application(
        &mut self,
        app: &Application,
        form: Option<&str>,
        read_revision: i64,
    ) -> Result<(), StoreError>;
    /// The application and its sealed form.
    async fn find_application(
        &mut self,
        id: &str,
    ) -> Result<Option<(Application, String)>, StoreError>;
    /// Newest first: an owner's, or (for staff) all of them in one state.
    async fn list_applications(
        &mut self,
        owner: Option<&str>,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Application>, StoreError>;
    /// Applications the owner started at or after `since`.
    async fn count_applications_since(
        &mut self,
        owner: &str,
        since: Timestamp,
    ) -> Result<u64, StoreError>;
    async fn insert_document(&mut self, doc: &StoredDocument) -> Result<(), StoreError>;
    /// Without their content, oldest first.
    async fn list_documents(
        &mut self,
        application_id: &str,
    ) -> Result<Vec<StoredDocument>, StoreError>;
    async fn find_document(
        &mut self,
        application_id: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError>;
}

struct Row {
    owner: String,
    doc: String,
    form: String,
}
from_row!(Row { owner, doc, form });

struct DocRow {
    id: String,
    application_id: String,
    name: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    content: String,
    uploaded_by: String,
    uploaded_at_ms: i64,
}
from_row!(DocRow {
    id,
    application_id,
    name,
    content_type,
    size_bytes,
    sha256,
    content,
    uploaded_by,
    uploaded_at_ms
});

fn decode(row: Row) -> Result<(Application, String), StoreError> {
    let mut app: Application =
        serde_json::from_str(&row.doc).map_err(|e| StoreError::corrupt("applications", e))?;
    app.owner = row.owner;
    Ok((app, row.form))
}

fn encode(app: &Application) -> Result<String, StoreError> {
    serde_json::to_string(app).map_err(|e| StoreError::InvalidValue(e.to_string()))
}

fn doc_from_row(r: DocRow) -> Result<StoredDocument, StoreError> {
    Ok(StoredDocument {
        uploaded_at: from_ms("application_documents", r.uploaded_at_ms)?,
        id: r.id,
        application_id: r.application_id,
        name: r.name,
        content_type: r.content_type,
        size_bytes: r.size_bytes,
        sha256: r.sha256,
        content: r.content,
        uploaded_by: r.uploaded_by,
    })
}

#[async_trait]
impl ApplicationRepository for SqlUnitOfWork {
    async fn insert_application(
        &mut self,
        app: &Application,
        form: &str,
    ) -> Result<(), StoreError> {
        let doc = encode(app)?;
        self.execute(
            self.sql(
                "INSERT INTO applications (id, owner, borrower_id, state, doc, form, \
                    revision, created_at_ms, updated_at_ms, open_owner) VALUES ($1, $2, \
                    $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&app.id)
            .bind(&app.owner)
            .bind(app.borrower_id.as_deref())
            .bind(app.status.name())
            .bind(&doc)
            .bind(form)
            .bind(app.revision)
            .bind(to_ms(app.created_at))
            .bind(to_ms(app.updated_at))
            .bind((!app.status.is_final()).then_some(app.owner.as_str())),
        )
        .await?;
        Ok(())
    }

    async fn update_application(
        &mut self,
        app: &Application,
        form: Option<&str>,
        read_revision: i64,
    ) -> Result<(), StoreError> {
        let doc = encode(app)?;
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE applications SET borrower_id = $1, state = $2, doc = $3, \
             form = COALESCE($4, form), revision = $5, updated_at_ms = $6, \
             open_owner = CASE WHEN $9 THEN NULL ELSE open_owner END \
             WHERE id = $7 AND revision = $8",
        )
        .bind(app.borrower_id.as_deref())
        .bind(app.status.name())
        .bind(&doc)
        .bind(form)
        .bind(app.revision)
        .bind(to_ms(app.updated_at))
        .bind(&app.id)
        .bind(read_revision)
        // An ended application gives up its owner's one open place; none is ever reopened.
        .bind(app.status.is_final())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        if n != 1 {
            return Err(StoreError::Stale("application"));
        }
        Ok(())
    }

    async fn find_application(
        &mut self,
        id: &str,
    ) -> Result<Option<(Application, String)>, StoreError> {
        let row: Option<Row> = self
            .fetch_optional(
                self.sql("SELECT owner, doc, form FROM applications WHERE id = $1")
                    .bind(id),
            )
            .await?;
        row.map(decode).transpose()
    }

    async fn list_applications(
        &mut self,
        owner: Option<&str>,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Application>, StoreError> {
        let rows: Vec<Row> = self
            .fetch_all(
                self.sql(
                    "SELECT owner, doc, '' AS form FROM applications WHERE ($1 IS NULL OR \
                        owner = $1) AND ($2 IS NULL OR state = $2) ORDER BY created_at_ms \
                        DESC, id DESC LIMIT $3",
                )
                .bind(owner)
                .bind(state)
                .bind(i64::from(limit)),
            )
            .await?;
        rows.into_iter()
            .map(|r| decode(r).map(|(a, _)| a))
            .collect()
    }

    async fn count_applications_since(
        &mut self,
        owner: &str,
        since: Timestamp,
    ) -> Result<u64, StoreError> {
        let count: i64 = self
            .fetch_one::<(_,)>(
                self.sql(
                    "SELECT COUNT(*) FROM applications WHERE owner = $1 AND created_at_ms \
                        >= $2",
                )
                .bind(owner)
                .bind(to_ms(since)),
            )
            .await
            .map(|(v,)| v)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn insert_document(&mut self, d: &StoredDocument) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "INSERT INTO application_documents (id, application_id, name, \
                    content_type, size_bytes, sha256, content, uploaded_by, \
                    uploaded_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&d.id)
            .bind(&d.application_id)
            .bind(&d.name)
            .bind(&d.content_type)
            .bind(d.size_bytes)
            .bind(&d.sha256)
            .bind(&d.content)
            .bind(&d.uploaded_by)
            .bind(to_ms(d.uploaded_at)),
        )
        .await?;
        Ok(())
    }

    async fn list_documents(
        &mut self,
        application_id: &str,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let rows: Vec<DocRow> = self
            .fetch_all(
                self.sql(
                    "SELECT id, application_id, name, content_type, size_bytes, sha256, \
                '' AS content, uploaded_by, uploaded_at_ms FROM \
                application_documents WHERE application_id = $1 ORDER BY \
                uploaded_at_ms, id",
                )
                .bind(application_id),
            )
            .await?;
        rows.into_iter().map(doc_from_row).collect()
    }

    async fn find_document(
        &mut self,
        application_id: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let row: Option<DocRow> = self
            .fetch_optional(
                self.sql(
                    "SELECT id, application_id, name, content_type, size_bytes, sha256, \
                        content, uploaded_by, uploaded_at_ms FROM application_documents \
                        WHERE application_id = $1 AND id = $2",
                )
                .bind(application_id)
                .bind(id),
            )
            .await?;
        row.map(doc_from_row).transpose()
    }
}
