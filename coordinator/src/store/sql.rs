//! The SQL both backends share. The schema (`migrations/`) and every statement are portable
//! between SQLite and PostgreSQL (`$N` parameters, `ON CONFLICT`), so [`impl_store!`]
//! expands the same [`Store`](super::Store) implementation over each backend's own pool and
//! row types; the backends differ only in how they connect. The macro's methods live in the
//! files of `sql/`, one macro each by subject (a trait impl cannot be split, but a macro can
//! expand to some of its methods), and expand where `impl_store!` does: in the backend's module.

pub(super) mod agents;
pub(super) mod backfill;
pub(super) mod campaigns;
pub(super) mod leases;
pub(super) mod reports;
pub(super) mod rows;
pub(super) mod schedules;
pub(super) mod trust;
pub(super) mod writer;

/// The run columns every run query selects (table alias `r`).
pub(crate) const RUN_COLS: &str = "r.run_id, r.campaign_id, r.agent_id, r.hostname, r.preset_id, \
     r.framework, r.device, r.state, r.fraction, r.message, r.seq, r.started_at, r.finished_at, \
     r.not_before";

/// The campaign columns every campaign query selects (table alias `c`).
pub(crate) const CAMPAIGN_COLS: &str =
    "c.id, c.created_at, c.deadline, c.spec, c.schedule, c.scheduled_at";

/// The keyset condition of a campaigns page (newest first) of one schedule or all, with
/// parameters `$1`..`$6`: schedule, schedule, after created_at (three times), after id.
pub(crate) const CAMPAIGN_PAGE_WHERE: &str = "($1 IS NULL OR c.schedule = $2) \
     AND ($3 IS NULL OR c.created_at < $4 OR (c.created_at = $5 AND c.id < $6))";

/// A result document, in its stored form for the `results.result_zstd` column
/// (`store/codec.rs`: its figures that are derived from its trials left out when that
/// reads back byte for byte, else zstd); `result` is its parse, when it is a result.
pub(crate) fn compress(
    json: &str,
    result: Option<&fleetcal_proto::CalibrationResult>,
) -> Result<Vec<u8>, sqlx::Error> {
    super::codec::encode_parsed(json, result).map_err(|e| corrupt("result_zstd", e))
}

/// A run's packed `fleet_runs` values (`store/packed.rs`).
pub(crate) struct PackedRun {
    /// `summary`: its peaks and anomaly lines, and the records its headline figures are
    /// made of.
    pub summary: Vec<u8>,
    /// `flags`: what its figures show.
    pub flags: Vec<u8>,
    /// `points`: its roofline points beside the headline records.
    pub points: Vec<u8>,
    /// `rates`: its other measured records' rates, for the compare report.
    pub rates: Vec<u8>,
}

impl PackedRun {
    /// The values of a run with nothing to show.
    pub(crate) fn empty() -> Result<PackedRun, super::codec::CodecError> {
        Ok(PackedRun {
            summary: super::packed::pack(&super::packed::RunSummary::default())?,
            flags: super::packed::pack_flags(&[])?,
            points: super::packed::pack_points(&[])?,
            rates: super::packed::pack_rates(&[])?,
        })
    }
}

/// A record with what the roofline and compare reports read of it: its operation,
/// precision, size, status and trials and the best and median rate of its unit
/// ([`crate::fleet::headline::rates`]: GB/s for STREAM, GOPS otherwise), not its other rates,
/// efficiency, CV or flags (half the bytes).
fn rates_alone(f: &crate::fleet::FleetFigure) -> crate::fleet::FleetFigure {
    let stream = crate::fleet::headline::is_stream(&f.operation);
    crate::fleet::FleetFigure {
        run_id: String::new(),
        operation: f.operation.clone(),
        precision: f.precision.clone(),
        status: f.status.clone(),
        reason: f.reason.clone(),
        best_gops: f.best_gops.filter(|_| !stream),
        median_gops: f.median_gops.filter(|_| !stream),
        best_gbps: f.best_gbps.filter(|_| stream),
        median_gbps: f.median_gbps.filter(|_| stream),
        efficiency: None,
        cv_pct: None,
        above_theoretical: false,
        noisy: false,
        throttled: false,
        in_cache: false,
        bandwidth_eligible: false,
        ..*f
    }
}

/// A result's pair rates as `fleet_rates` keeps them ([`rates_alone`]): every measured record
/// that is not already kept (`kept`: the indexes of its headline records and roofline points).
pub(crate) fn rates_of(
    figures: &[crate::fleet::FleetFigure],
    kept: &[i64],
) -> Vec<crate::fleet::FleetFigure> {
    figures
        .iter()
        .filter(|f| !kept.contains(&f.idx) && crate::fleet::headline::rates(f).is_some())
        .map(rates_alone)
        .collect()
}

/// The packed values of a run, from `figures` (every record of its result).
pub(crate) fn packed_run(
    fleet: &crate::fleet::FleetRun,
    figures: &[crate::fleet::FleetFigure],
) -> Result<PackedRun, sqlx::Error> {
    let mut headline = crate::fleet::headline::headline_records(figures);
    headline.iter_mut().for_each(|f| f.run_id.clear());
    // The roofline points as `points` keeps them ([`rates_alone`]).
    let points: Vec<crate::fleet::FleetFigure> =
        crate::fleet::headline::point_records(figures, &headline)
            .iter()
            .map(rates_alone)
            .collect();
    let kept: Vec<i64> = headline.iter().chain(&points).map(|f| f.idx).collect();
    let pack = || -> Result<PackedRun, super::codec::CodecError> {
        Ok(PackedRun {
            rates: super::packed::pack_rates(&rates_of(figures, &kept))?,
            summary: super::packed::pack(&super::packed::RunSummary {
                peaks: fleet.peaks.clone(),
                anomalies: fleet.anomalies.clone(),
                figures: headline,
            })?,
            flags: super::packed::pack_flags(&fleet.figure_flags)?,
            points: super::packed::pack_points(&points)?,
        })
    };
    pack().map_err(|e| corrupt("summary", e))
}

/// Every figure of a stored result, from its document (`result_json` of a row stored before
/// compression, else `result_zstd`).
pub(crate) fn figures_of_document(
    run_id: &str,
    plain: &str,
    compressed: Option<&[u8]>,
) -> Result<Vec<crate::fleet::FleetFigure>, sqlx::Error> {
    match compressed {
        Some(bytes) => {
            super::codec::decode_figures(bytes, run_id).map_err(|e| corrupt("result_zstd", e))
        }
        None => {
            let result = serde_json::from_str(plain).map_err(|e| corrupt("result_json", e))?;
            Ok(crate::fleet::FleetFigure::from_result(run_id, &result))
        }
    }
}

/// Which packed values of a fleet row a read wants besides its summary.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sections {
    /// `flags` (the anomalies report).
    pub flags: bool,
    /// `points` (the roofline and compare reports).
    pub points: bool,
    /// `rates` (the compare report).
    pub rates: bool,
}

/// The most results the writer commits in one transaction.
pub(crate) const WRITE_BATCH: usize = 64;

/// A result waiting for the store's writer (see `start_writer` in [`impl_store!`]).
pub(crate) struct PendingResult {
    /// Its run, as the caller read it.
    pub run: crate::model::RunRecord,
    /// The document, compressed.
    pub compressed: Vec<u8>,
    /// Its `fleet_runs` row.
    pub fleet: crate::fleet::FleetRun,
    /// Its packed values ([`packed_run`]).
    pub packed: PackedRun,
    /// When it was stored.
    pub at: i64,
    /// Where the outcome goes, once committed.
    pub reply: tokio::sync::oneshot::Sender<Result<crate::model::StoreOutcome, crate::Error>>,
}

/// Answers every result of a batch that could not be committed with the error.
pub(crate) fn fail_results(batch: Vec<PendingResult>, error: &str) {
    for p in batch {
        let _ = p.reply.send(Err(crate::Error::Storage {
            context: format!("storing the result of run '{}'", p.run.run_id),
            source: sqlx::Error::Protocol(format!("committing a batch of results: {error}")),
        }));
    }
}

/// A stored result document: the compressed column when set, else the plain text of a row
/// stored before compression.
pub(crate) fn document(plain: String, compressed: Option<Vec<u8>>) -> Result<String, sqlx::Error> {
    match compressed {
        None => Ok(plain),
        Some(bytes) => super::codec::decode(&bytes).map_err(|e| corrupt("result_zstd", e)),
    }
}

/// The `fleet_runs` columns the runs query of `fleet_rows` selects (alias `r`).
pub(crate) const FLEET_RUN_COLS: &str = "r.run_id, r.campaign_id, r.schedule, r.agent_id, \
     r.hostname, r.framework, r.device, r.fallback_from, r.preset_id, r.quick, r.started_at, \
     r.stored_at, r.cpu_model, r.microarch, r.cores, r.logical_cpus, r.memory_gb, r.gpu_model, \
     r.jetson_model, r.power_mode, r.blas, r.libtorch, r.tool_version, r.host_key, r.env_key, \
     r.noise_floor_pct, r.bandwidth_gbps, r.bandwidth_efficiency, r.summary";
/// The packed `flags`, `points` and `rates` of a fleet row, selected only by the reports that read
/// them (after [`FLEET_RUN_COLS`]).
pub(crate) const FLEET_FLAGS_COL: &str = ", r.flags";
/// See [`FLEET_FLAGS_COL`].
pub(crate) const FLEET_POINTS_COL: &str = ", r.points";
/// See [`FLEET_FLAGS_COL`] (from `fleet_rates`, joined by [`FLEET_RATES_JOIN`]).
pub(crate) const FLEET_RATES_COL: &str = ", x.rates";
/// The join of [`FLEET_RATES_COL`].
pub(crate) const FLEET_RATES_JOIN: &str = " LEFT JOIN fleet_rates x ON x.run_id = r.run_id";

/// How many ids one `IN` list of a read holds (the documents of
/// [`Store::fleet_figures`](super::Store::fleet_figures), the campaigns of
/// [`Store::runs_ended_badly`](super::Store::runs_ended_badly)).
pub(crate) const IDS_PER_QUERY: usize = 256;

/// The alert columns (alias `a`).
pub(crate) const ALERT_COLS: &str = "a.id, a.agent_id, a.hostname, a.group_key, a.framework, \
     a.figure, a.baseline, a.current_value, a.change_pct, a.kind, a.began_at, a.run_id, \
     a.confirm_campaign_id, a.state, a.created_at, a.updated_at, a.message";

/// A parameter of a statement built at run time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// A text.
    Text(String),
    /// An integer.
    Int(i64),
}

/// The `WHERE` clause (on `fleet_runs r`) of a [`FleetQuery`](crate::fleet::FleetQuery) and
/// its parameters, numbered from `$1`. Only the filters given are in it, so each one can use
/// its index; a label pair is a lookup in `agent_labels`. With `latest_only`, a run is kept
/// only when no run of the same board and framework that the same filters select is later
/// (an anti-join on the `(agent_id, started_at)` index, the filters it needs bound again).
pub(crate) fn fleet_filter(q: &crate::fleet::FleetQuery) -> (String, Vec<Param>) {
    let (mut clauses, mut params) = filter_clauses(q, "r", 0);
    if q.latest_only {
        // Only the filters a later run of the same board and framework can fail: the labels,
        // the board, the framework and `since` hold for it when they hold for `r`.
        let later_may_fail = crate::fleet::FleetQuery {
            schedule: q.schedule.clone(),
            campaign_id: q.campaign_id.clone(),
            until: q.until,
            ..crate::fleet::FleetQuery::default()
        };
        let (inner, more) = filter_clauses(&later_may_fail, "n", params.len());
        let mut later = vec![
            "n.agent_id = r.agent_id".to_string(),
            "n.framework = r.framework".to_string(),
            // The first conjunct is a range on the `(agent_id, started_at)` index: the probe
            // starts at `r`'s own time (with the OR alone SQLite scanned the board's every run
            // from its first: a year of 100 boards took 10 s).
            "n.started_at >= r.started_at".to_string(),
            "(n.started_at > r.started_at OR n.run_id > r.run_id)".to_string(),
        ];
        later.extend(inner);
        clauses.push(format!(
            "NOT EXISTS (SELECT 1 FROM fleet_runs n WHERE {})",
            later.join(" AND ")
        ));
        params.extend(more);
    }
    if q.paired_only {
        // On the `(campaign_id, agent_id)` index: a probe of the board's runs in the campaign.
        clauses.push(
            "EXISTS (SELECT 1 FROM fleet_runs p WHERE p.campaign_id = r.campaign_id \
             AND p.agent_id = r.agent_id AND p.device = r.device AND p.framework <> r.framework)"
                .to_string(),
        );
    }
    if clauses.is_empty() {
        (String::new(), params)
    } else {
        (format!("WHERE {}", clauses.join(" AND ")), params)
    }
}

/// The conditions of a [`FleetQuery`](crate::fleet::FleetQuery) on `fleet_runs` as `alias`,
/// their parameters numbered after `first`.
fn filter_clauses(
    q: &crate::fleet::FleetQuery,
    alias: &str,
    first: usize,
) -> (Vec<String>, Vec<Param>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let next = |params: &mut Vec<Param>, p: Param| {
        params.push(p);
        format!("${}", first + params.len())
    };
    for (key, value) in &q.select {
        let k = next(&mut params, Param::Text(key.clone()));
        let v = next(&mut params, Param::Text(value.clone()));
        clauses.push(format!(
            "{alias}.agent_id IN (SELECT l.agent_id FROM agent_labels l WHERE l.key = {k} AND l.value = {v})"
        ));
    }
    let texts = [
        ("agent_id", &q.agent_id),
        ("schedule", &q.schedule),
        ("framework", &q.framework),
        ("campaign_id", &q.campaign_id),
        ("run_id", &q.run_id),
    ];
    for (column, value) in texts {
        if let Some(v) = value {
            let n = next(&mut params, Param::Text(v.clone()));
            clauses.push(format!("{alias}.{column} = {n}"));
        }
    }
    if let Some(since) = q.since {
        let n = next(&mut params, Param::Int(since));
        clauses.push(format!("{alias}.started_at >= {n}"));
    }
    if let Some(until) = q.until {
        let n = next(&mut params, Param::Int(until));
        clauses.push(format!("{alias}.started_at < {n}"));
    }
    (clauses, params)
}

/// How many runs one `INSERT` of a new campaign writes (14 parameters each: well under both
/// backends' parameter limits). Not many more: sqlx binds a SQLite parameter after asking
/// SQLite its name, a walk of the statement's list of names, so a statement's binding costs
/// the square of its parameters (500 runs, 7,000 parameters: ~100 ms a statement, most of
/// a 3,000-board campaign's start; see docs/coordinator.md).
pub(crate) const RUNS_PER_INSERT: usize = 64;

/// How many runs one statement of [`Store::transitions`](super::Store::transitions) updates
/// (its `IN` list; well under both backends' parameter limits).
pub(crate) const TRANSITIONS_PER_STATEMENT: usize = 500;

/// `$first, $first+1, …` for `n` parameters (an `IN` list of states).
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reports a column that holds something the coordinator never writes.
pub(crate) fn corrupt(column: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("column '{column}': {e}").into())
}

/// Logs a row a listing leaves out because it cannot be decoded: the table, the row's id
/// (bounded) and the error, which names the column.
pub(crate) fn skipped(table: &str, id: &str, e: &sqlx::Error) {
    let hint = if table == "agents" {
        " (`fleetctl agents remove ID` removes it; the agent registering again replaces it)"
    } else {
        ""
    };
    let row = fleetcal_proto::quote::quoted(id);
    tracing::warn!("skipping row {row} of table {table}: it cannot be decoded{hint}: {e}");
}

/// A stored result document as read: `results.result_json` (the text of a row stored before
/// compression, else empty) and `results.result_zstd`.
pub(crate) type StoredDocument = (String, Option<Vec<u8>>);

/// Every figure of each `(run id, (result_json, result_zstd))` document, in that order
/// (each run's in record order), decoded on up to as many threads as there are cores; a
/// document that does not decode is logged and left out.
pub(crate) fn decode_documents(
    docs: Vec<(String, StoredDocument)>,
) -> Vec<crate::fleet::FleetFigure> {
    crate::par::par_map(docs, |(id, (plain, compressed))| {
        figures_of_document(&id, &plain, compressed.as_deref()).unwrap_or_else(|e| {
            skipped("results", &id, &e);
            Vec::new()
        })
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Implements `Store` for `$store` (a struct with a `pool: sqlx::Pool<$db>` field).
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        impl $store {
            $crate::store::sql::rows::store_rows!($store, $db);
            $crate::store::sql::writer::store_writer!($store, $db);
            $crate::store::sql::backfill::store_backfill!($store, $db);
        }

        impl Store for $store {
            $crate::store::sql::agents::store_agents!($store, $db);
            $crate::store::sql::campaigns::store_campaigns!($store, $db);
            $crate::store::sql::schedules::store_schedules!($store, $db);
            $crate::store::sql::reports::store_reports!($store, $db);
            $crate::store::sql::leases::store_leases!($store, $db);
            $crate::store::sql::trust::store_trust!($store, $db);
        }

        /// An `enrollment_requests` row.
        fn enrollment_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<super::EnrollmentRequest, sqlx::Error> {
            let state: String = row.try_get("state")?;
            Ok(super::EnrollmentRequest {
                agent_id: row.try_get("agent_id")?,
                hostname: row.try_get("hostname")?,
                key_fingerprint: row.try_get("key_fingerprint")?,
                state: super::EnrollmentState::parse(&state).ok_or_else(|| {
                    corrupt(
                        "state",
                        format!(
                            "'{}' is not an enrollment state",
                            fleetcal_proto::quote::bounded(&state)
                        ),
                    )
                })?,
                requested_at: row.try_get("requested_at")?,
                decided_at: row.try_get("decided_at")?,
            })
        }
    };
}

pub(crate) use impl_store;
