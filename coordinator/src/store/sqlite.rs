//! The SQLite backend (the default): one file, WAL journal with `synchronous = FULL`,
//! foreign keys on.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use super::sql::{
    compress, corrupt, decode_documents, document, fail_results, fleet_rows_sql, impl_store,
    packed_run, placeholders, skipped, PackedRun, Param, PendingResult, Sections, StoredDocument,
    ALERT_COLS, CAMPAIGN_COLS, CAMPAIGN_PAGE_WHERE, IDS_PER_QUERY, RUN_COLS, WRITE_BATCH,
};
use super::{AlertUpdate, CampaignKey, Claim, ClaimOutcome, Page, RemoveOutcome, RunKey, Store};
use crate::aggregate::{counts_from, RunCounts};
use crate::fleet::{
    AlertRecord, AlertState, BoardFacts, FleetFigure, FleetQuery, FleetRows, FleetRun,
};
use crate::model::{
    AgentRecord, CampaignRecord, FiringOutcome, FiringRecord, FiringTag, RunLease, RunRecord,
    RunState, ScheduleRecord, StoreOutcome, Transition,
};
use crate::Error;

/// The drift check after each upload reads the board's last 120 days of fleet rows
/// (`agent_id = ? AND started_at >= ?`, the columns of `FLEET_RUN_COLS`). In the table they
/// lie one a night among every other board's rows, a page read each (~75 µs when cold on the
/// development machine, ~9 ms a check); this index holds exactly those columns in board and
/// time order, so SQLite reads a board's history from it alone, from a few neighbouring pages.
/// SQLite only, made when the store opens: PostgreSQL's B-tree refuses an entry over ~2.7 KB,
/// which the summary of a result with many anomaly lines could pass, so the migrations (one
/// set for both) cannot carry it.
const BOARD_HISTORY_INDEX: &str = "CREATE INDEX IF NOT EXISTS fleet_runs_board_history ON \
     fleet_runs (agent_id, started_at, run_id, campaign_id, schedule, hostname, framework, \
     device, fallback_from, preset_id, quick, stored_at, cpu_model, microarch, cores, \
     logical_cpus, memory_gb, gpu_model, jetson_model, power_mode, blas, libtorch, \
     tool_version, host_key, env_key, noise_floor_pct, bandwidth_gbps, bandwidth_efficiency, \
     summary)";

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
            .map_err(|source| Error::Migrate {
                url: url.clone(),
                source,
            })?;
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE name = 'fleet_runs_board_history'",
        )
        .fetch_optional(&pool)
        .await
        .map_err(Error::storage(format!("opening {url}")))?;
        if exists.is_none() {
            tracing::info!(db = %url, "indexing each board's history (once; a minute or two for a year of 1,000 boards)");
            sqlx::query(BOARD_HISTORY_INDEX)
                .execute(&pool)
                .await
                .map_err(Error::storage(format!(
                    "indexing the board histories of {url}"
                )))?;
        }
        let writer = Self::start_writer(pool.clone());
        let store = SqliteStore { pool, writer };
        store.backfill().await?;
        Ok(store)
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use super::*;

    /// The drift check's read of one board's history is answered from the board-history
    /// index alone, in its order: a column added to `FLEET_RUN_COLS` and not to the index
    /// would send every check back to the table's scattered rows without a sound.
    #[tokio::test]
    async fn a_boards_history_is_read_from_its_index_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("fleet.db"))
            .await
            .unwrap();
        let (sql, params, _) = fleet_rows_sql(&FleetQuery {
            agent_id: Some("b0000000-0000-4000-8000-000000000000".into()),
            since: Some(0),
            headline_figures_only: true,
            ..FleetQuery::default()
        });
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let plan: Vec<String> = SqliteStore::bind_all(sqlx::query(&explain), &params)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        assert_eq!(
            plan,
            ["SEARCH r USING COVERING INDEX fleet_runs_board_history (agent_id=? AND started_at>?)"],
            "{plan:?}"
        );
    }
}
