//! Maintenance windows, and the borrowers a window's notice goes to.

use async_trait::async_trait;
use lendcore_domain::Timestamp;
use lendcore_domain::maintenance::MaintenanceWindow;

use crate::StoreError;
use crate::time::{from_ms, from_opt_ms, to_ms};
use crate::unit_of_work::SqlUnitOfWork;

#[async_trait]
pub trait MaintenanceRepository {
    async fn insert_maintenance_window(
        &mut self,
        window: &MaintenanceWindow,
    ) -> Result<(), StoreError>;

    /// Writes a window changed from `read_revision`; [`StoreError::Stale`] if it moved meanwhile.
    async fn update_maintenance_window(
        &mut self,
        window: &MaintenanceWindow,
        read_revision: i64,
    ) -> Result<(), StoreError>;

    async fn find_maintenance_window(
        &mut self,
        id: &str,
    ) -> Result<Option<MaintenanceWindow>, StoreError>;

    /// Windows not cancelled that have not ended by `now`, soonest first: the ones that can
    /// still hold work back.
    async fn open_maintenance_windows(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<MaintenanceWindow>, StoreError>;

    /// Every window ending at or after `since`, cancelled ones included, soonest first.
    async fn maintenance_windows_since(
        &mut self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<MaintenanceWindow>, StoreError>;

    /// Borrowers with a drawdown in one of `states`, by id, `limit` after `after`.
    async fn borrowers_with_drawdowns_in(
        &mut self,
        states: &[&str],
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
}

struct WindowRow {
    id: String,
    starts_at_ms: i64,
    ends_at_ms: i64,
    message: String,
    created_by: String,
    created_at_ms: i64,
    cancelled_at_ms: Option<i64>,
    revision: i64,
}
crate::sql::from_row!(WindowRow {
    id,
    starts_at_ms,
    ends_at_ms,
    message,
    created_by,
    created_at_ms,
    cancelled_at_ms,
    revision,
});

const SELECT: &str = "SELECT id, starts_at_ms, ends_at_ms, message, created_by, created_at_ms, \
     cancelled_at_ms, revision FROM maintenance_windows";

#[async_trait]
impl MaintenanceRepository for SqlUnitOfWork {
    async fn insert_maintenance_window(
        &mut self,
        window: &MaintenanceWindow,
    ) -> Result<(), StoreError> {
        self.execute(
            self.sql(
                "INSERT INTO maintenance_windows (id, starts_at_ms, ends_at_ms, \
                message, created_by, created_at_ms, cancelled_at_ms, revision) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&window.id)
            .bind(to_ms(window.starts_at))
            .bind(to_ms(window.ends_at))
            .bind(&window.message)
            .bind(&window.created_by)
            .bind(to_ms(window.created_at))
            .bind(window.cancelled_at.map(to_ms))
            .bind(window.revision),
        )
        .await?;
        Ok(())
    }

    async fn update_maintenance_window(
        &mut self,
        window: &MaintenanceWindow,
        read_revision: i64,
    ) -> Result<(), StoreError> {
        let updated = self
            .execute(
                self.sql(
                    "UPDATE maintenance_windows SET cancelled_at_ms = $1, revision = $2 \
                WHERE id = $3 AND revision = $4",
                )
                .bind(window.cancelled_at.map(to_ms))
                .bind(window.revision)
                .bind(&window.id)
                .bind(read_revision),
            )
            .await?;
        match updated {
            1 => Ok(()),
            _ => Err(StoreError::Stale("maintenance window")),
        }
    }

    async fn find_maintenance_window(
        &mut self,
        id: &str,
    ) -> Result<Option<MaintenanceWindow>, StoreError> {
        let sql = format!("{SELECT} WHERE id = $1");
        let row: Option<WindowRow> = self.fetch_optional(self.sql(&sql).bind(id)).await?;
        row.map(from_row).transpose()
    }

    async fn open_maintenance_windows(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE ends_at_ms > $1 AND cancelled_at_ms IS NULL ORDER BY starts_at_ms, id"
        );
        let rows: Vec<WindowRow> = self.fetch_all(self.sql(&sql).bind(to_ms(now))).await?;
        rows.into_iter().map(from_row).collect()
    }

    async fn maintenance_windows_since(
        &mut self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let sql = format!("{SELECT} WHERE ends_at_ms >= $1 ORDER BY starts_at_ms, id LIMIT $2");
        let rows: Vec<WindowRow> = self
            .fetch_all(self.sql(&sql).bind(to_ms(since)).bind(i64::from(limit)))
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    async fn borrowers_with_drawdowns_in(
        &mut self,
        states: &[&str],
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let wanted = match self.backend() {
            crate::Backend::Sqlite => "SELECT value FROM json_each($1)",
            crate::Backend::Postgres => "SELECT jsonb_array_elements_text($1::jsonb)",
        };
        let sql = format!(
            "/* across borrowers: borrowers by drawdown state */ SELECT DISTINCT borrower_id \
             FROM drawdowns WHERE state IN ({wanted}) \
             AND borrower_id > $2 ORDER BY borrower_id LIMIT $3"
        );
        let states = serde_json::to_string(states)
            .map_err(|e| StoreError::Config(format!("states: {e}")))?;
        Ok(self
            .fetch_all::<(_,)>(
                self.sql(&sql)
                    .bind(&states)
                    .bind(after)
                    .bind(i64::from(limit)),
            )
            .await
            .map(|v| v.into_iter().map(|(v,)| v).collect())?)
    }
}

fn from_row(row: WindowRow) -> Result<MaintenanceWindow, StoreError> {
    const T: &str = "maintenance_windows";
    Ok(MaintenanceWindow {
        starts_at: from_ms(T, row.starts_at_ms)?,
        ends_at: from_ms(T, row.ends_at_ms)?,
        created_at: from_ms(T, row.created_at_ms)?,
        cancelled_at: from_opt_ms(T, row.cancelled_at_ms)?,
        id: row.id,
        message: row.message,
        created_by: row.created_by,
        revision: row.revision,
    })
}
