//! Incidents (the operators' table: no borrower's rows) and who was told of each (a borrower's
//! rows, keyed by borrower).

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::incident::{Incident, Source};

use crate::StoreError;
use crate::time::to_ms;
use crate::unit_of_work::{SqlUnitOfWork, on_tx};

#[async_trait]
pub trait IncidentRepository {
    async fn insert_incident(&mut self, incident: &Incident) -> Result<(), StoreError>;

    /// Replaces the incident stored at `read_revision`; false when it changed meanwhile.
    async fn update_incident(
        &mut self,
        incident: &Incident,
        read_revision: i64,
    ) -> Result<bool, StoreError>;

    async fn find_incident(&mut self, id: &str) -> Result<Option<Incident>, StoreError>;

    /// The open incident an alert raised, if any.
    async fn open_incident_of_alert(
        &mut self,
        alert_id: &str,
    ) -> Result<Option<Incident>, StoreError>;

    /// Open incidents, then those that ended at or after `ended_since`, each latest started
    /// first: a busy day's ended incidents never push an open one out of `limit`.
    async fn current_incidents(
        &mut self,
        ended_since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError>;

    /// The latest incidents started, newest first; `open` narrows to open or ended ones.
    async fn list_incidents(
        &mut self,
        open: Option<bool>,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError>;

    /// Records that `borrowers` were told of the incident; returns those not told before.
    async fn record_incident_notices(
        &mut self,
        incident_id: &str,
        borrowers: &[String],
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` borrowers told of the incident and not yet of its end, now marked told of
    /// it (in the caller's transaction, with their messages). A deliberate read across
    /// borrowers, by incident: the fan-out of a background job, as the notice's own scan is.
    async fn take_incident_ends_to_tell(
        &mut self,
        incident_id: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// Borrowers with payouts in flight after `after` (by id), through `channel` when given:
    /// drawdowns paying out, or waiting for a person, that called it.
    async fn borrowers_paying_out(
        &mut self,
        channel: Option<&str>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
}

fn to_document(incident: &Incident) -> Result<String, StoreError> {
    serde_json::to_string(incident).map_err(|e| StoreError::corrupt("incidents", e))
}

fn from_document(document: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(document).map_err(|e| StoreError::corrupt("incidents", e))
}

fn alert_of(incident: &Incident) -> Option<&str> {
    match &incident.source {
        Source::Alert { alert_id, .. } => Some(alert_id),
        Source::Operator { .. } => None,
    }
}

fn documents(rows: Vec<String>) -> Result<Vec<Incident>, StoreError> {
    rows.iter().map(|d| from_document(d)).collect()
}

#[async_trait]
impl IncidentRepository for SqlUnitOfWork {
    async fn insert_incident(&mut self, incident: &Incident) -> Result<(), StoreError> {
        let document = to_document(incident)?;
        on_tx!(self, c => sqlx::query(
            "INSERT INTO incidents (id, document, alert_id, started_at_ms, ended_at_ms, revision) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&incident.id)
        .bind(&document)
        .bind(alert_of(incident))
        .bind(to_ms(incident.started_at))
        .bind(incident.ended_at.map(to_ms))
        .bind(incident.revision)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn update_incident(
        &mut self,
        incident: &Incident,
        read_revision: i64,
    ) -> Result<bool, StoreError> {
        let document = to_document(incident)?;
        let done = on_tx!(self, c => sqlx::query(
            "UPDATE incidents SET document = $1, ended_at_ms = $2, revision = $3 \
             WHERE id = $4 AND revision = $5",
        )
        .bind(&document)
        .bind(incident.ended_at.map(to_ms))
        .bind(incident.revision)
        .bind(&incident.id)
        .bind(read_revision)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    async fn find_incident(&mut self, id: &str) -> Result<Option<Incident>, StoreError> {
        let row: Option<String> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT document FROM incidents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await)?;
        row.as_deref().map(from_document).transpose()
    }

    async fn open_incident_of_alert(
        &mut self,
        alert_id: &str,
    ) -> Result<Option<Incident>, StoreError> {
        let row: Option<String> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT document FROM incidents WHERE alert_id = $1 AND ended_at_ms IS NULL",
        )
        .bind(alert_id)
        .fetch_optional(c)
        .await)?;
        row.as_deref().map(from_document).transpose()
    }

    async fn current_incidents(
        &mut self,
        ended_since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<String> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT document FROM incidents WHERE ended_at_ms IS NULL OR ended_at_ms >= $1 \
             ORDER BY ended_at_ms IS NULL DESC, started_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(to_ms(ended_since))
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?;
        documents(rows)
    }

    async fn list_incidents(
        &mut self,
        open: Option<bool>,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let filter = match open {
            None => "",
            Some(true) => "WHERE ended_at_ms IS NULL",
            Some(false) => "WHERE ended_at_ms IS NOT NULL",
        };
        let sql = format!(
            "SELECT document FROM incidents {filter} ORDER BY started_at_ms DESC, id DESC LIMIT $1"
        );
        let rows: Vec<String> = on_tx!(self, c => sqlx::query_scalar(&sql)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?;
        documents(rows)
    }

    async fn record_incident_notices(
        &mut self,
        incident_id: &str,
        borrowers: &[String],
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut told = Vec::new();
        for borrower in borrowers {
            let inserted: Option<String> = on_tx!(self, c => sqlx::query_scalar(
                "INSERT INTO incident_notices (borrower_id, incident_id, told_at_ms) \
                 VALUES ($1, $2, $3) ON CONFLICT (borrower_id, incident_id) DO NOTHING \
                 RETURNING borrower_id",
            )
            .bind(borrower)
            .bind(incident_id)
            .bind(to_ms(now))
            .fetch_optional(c)
            .await)?;
            told.extend(inserted);
        }
        Ok(told)
    }

    async fn take_incident_ends_to_tell(
        &mut self,
        incident_id: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let borrowers: Vec<String> = on_tx!(self, c => sqlx::query_scalar(
            "SELECT borrower_id FROM incident_notices \
             WHERE incident_id = $1 AND end_told_at_ms IS NULL ORDER BY borrower_id LIMIT $2",
        )
        .bind(incident_id)
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?;
        for borrower in &borrowers {
            on_tx!(self, c => sqlx::query(
                "UPDATE incident_notices SET end_told_at_ms = $1 \
                 WHERE borrower_id = $2 AND incident_id = $3",
            )
            .bind(to_ms(now))
            .bind(borrower)
            .bind(incident_id)
            .execute(c)
            .await
            .map(drop))?;
        }
        Ok(borrowers)
    }

    async fn borrowers_paying_out(
        &mut self,
        channel: Option<&str>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let in_flight = "d.state IN ('queued_for_maintenance', 'held_for_review', \
                         'disbursing', 'manual_review')";
        let sql = match channel {
            None => format!(
                "/* across borrowers: borrowers paying out */ SELECT DISTINCT d.borrower_id \
                 FROM drawdowns d WHERE {in_flight} \
                 AND d.borrower_id > $1 ORDER BY d.borrower_id LIMIT $2"
            ),
            Some(_) => format!(
                "/* across borrowers: borrowers paying out */ SELECT DISTINCT d.borrower_id \
                 FROM drawdowns d JOIN payout_attempts p ON p.borrower_id = d.borrower_id AND p.drawdown_id = d.id \
                 WHERE {in_flight} AND p.channel_id = $3 \
                 AND d.borrower_id > $1 ORDER BY d.borrower_id LIMIT $2"
            ),
        };
        Ok(on_tx!(self, c => {
            let mut query = sqlx::query_scalar(&sql).bind(after).bind(i64::from(limit));
            if let Some(channel) = channel {
                query = query.bind(channel);
            }
            query.fetch_all(c).await
        })?)
    }
}
