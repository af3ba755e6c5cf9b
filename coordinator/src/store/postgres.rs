//! The PostgreSQL backend (`--db postgres://...`).

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::postgres::{PgColumn, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Row, TypeInfo};

use super::columns::{Cell, OwnedRow};

use super::sql::{
    compress, corrupt, decode_documents, document, fail_results, fleet_filter, impl_store,
    packed_run, placeholders, skipped, PackedRun, Param, PendingResult, Sections, StoredDocument,
    ALERT_COLS, CAMPAIGN_COLS, CAMPAIGN_PAGE_WHERE, FLEET_FLAGS_COL, FLEET_POINTS_COL,
    FLEET_RATES_COL, FLEET_RATES_JOIN, FLEET_RUN_COLS, IDS_PER_QUERY, RUN_COLS, WRITE_BATCH,
};
use super::{AlertUpdate, CampaignKey, Claim, ClaimOutcome, Page, RemoveOutcome, RunKey, Store};
use crate::aggregate::{counts_from, RunCounts};
use crate::fleet::{AlertRecord, AlertState, FleetFigure, FleetQuery, FleetRows, FleetRun};
use crate::model::{
    AgentRecord, CampaignRecord, FiringOutcome, FiringRecord, FiringTag, RunLease, RunRecord,
    RunState, ScheduleRecord, StoreOutcome, Transition,
};
use crate::Error;

/// A [`Store`] in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The group-commit writer of results (`start_writer`).
    writer: tokio::sync::mpsc::Sender<PendingResult>,
}

impl PgStore {
    /// Connects and applies the migrations.
    pub async fn open(url: &str) -> Result<PgStore, Error> {
        let shown = super::url::redact(url);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .map_err(Error::storage(format!("connecting to {shown}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| Error::Migrate { url: shown, source })?;
        let writer = Self::start_writer(pool.clone());
        let store = PgStore { pool, writer };
        store.backfill().await?;
        Ok(store)
    }
}

impl PgStore {
    /// The rows of a fleet read, as [`OwnedRow`]s: each column by its PostgreSQL type.
    async fn fleet_row_cells(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<OwnedRow>, sqlx::Error> {
        let mut query = sqlx::query::<sqlx::Postgres>(sql);
        for p in params {
            query = match p {
                Param::Text(t) => query.bind(t.as_str()),
                Param::Int(i) => query.bind(*i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let names: Arc<HashMap<String, usize>> = Arc::new(
            first
                .columns()
                .iter()
                .map(|c| (c.name().to_string(), c.ordinal()))
                .collect(),
        );
        rows.iter()
            .map(|row| {
                let cells = row
                    .columns()
                    .iter()
                    .map(|c| pg_cell(row, c))
                    .collect::<Result<_, _>>()?;
                Ok(OwnedRow {
                    names: Arc::clone(&names),
                    cells,
                })
            })
            .collect()
    }
}

/// Column `c` of `row` as a [`Cell`], by its PostgreSQL type (those `fleet_runs` has).
fn pg_cell(row: &PgRow, c: &PgColumn) -> Result<Cell, sqlx::Error> {
    let i = c.ordinal();
    let cell = match c.type_info().name() {
        "TEXT" | "VARCHAR" => row.try_get::<Option<String>, _>(i)?.map(Cell::Text),
        "INT8" => row.try_get::<Option<i64>, _>(i)?.map(Cell::Int),
        "INT4" => row
            .try_get::<Option<i32>, _>(i)?
            .map(|v| Cell::Int(v.into())),
        "FLOAT8" => row.try_get::<Option<f64>, _>(i)?.map(Cell::Real),
        "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Cell::Blob),
        "BOOL" => row
            .try_get::<Option<bool>, _>(i)?
            .map(|b| Cell::Int(i64::from(b))),
        other => return Err(corrupt(c.name(), format!("a column of type {other}"))),
    };
    Ok(cell.unwrap_or(Cell::Null))
}

impl_store!(PgStore, sqlx::Postgres);
