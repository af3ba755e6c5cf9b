//! The PostgreSQL backend (`--db postgres://...`).

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use super::sql::{
    compress, corrupt, decode_documents, document, fail_results, fleet_filter, impl_store,
    packed_run, placeholders, skipped, PackedRun, Param, PendingResult, Sections, StoredDocument,
    ALERT_COLS, CAMPAIGN_COLS, CAMPAIGN_PAGE_WHERE, FLEET_FLAGS_COL, FLEET_POINTS_COL,
    FLEET_RUN_COLS, IDS_PER_QUERY, RUN_COLS, WRITE_BATCH,
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

impl_store!(PgStore, sqlx::Postgres);
