//! The SQLite backend (the default): one file, WAL journal with `synchronous = FULL`,
//! foreign keys on.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

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

/// A [`Store`] in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The group-commit writer of results (`start_writer`).
    writer: tokio::sync::mpsc::Sender<PendingResult>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and applies the migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, Error> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit returns once the WAL is flushed to disk, so an acknowledged
            // result survives a crash or a power cut (NORMAL could lose the last commits
            // on a power cut). Results are committed many at a time (`start_writer`).
            .synchronous(SqliteSynchronous::Full)
            // 8 KB pages for a new database (an existing one keeps its own): a fleet row
            // (~2.6 KB with its packed summary, flags and points) took a 4 KB page alone.
            .page_size(8192)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(Error::storage(format!("opening {url}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| Error::Migrate { url, source })?;
        let writer = Self::start_writer(pool.clone());
        let store = SqliteStore { pool, writer };
        store.backfill().await?;
        Ok(store)
    }
}

impl SqliteStore {
    /// The rows of a fleet read, each value copied once ([`super::sqlite_scan`]).
    async fn fleet_row_cells(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<super::columns::OwnedRow>, sqlx::Error> {
        super::sqlite_scan::scan(&self.pool, sql, params).await
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);
