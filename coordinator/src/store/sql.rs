//! The SQL both backends share. The schema (`migrations/`) and every statement are portable
//! between SQLite and PostgreSQL (`$N` parameters, `ON CONFLICT`), so [`impl_store!`]
//! expands the same [`Store`](super::Store) implementation over each backend's own pool and
//! row types; the backends differ only in how they connect.

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
}

impl PackedRun {
    /// The values of a run with nothing to show.
    pub(crate) fn empty() -> Result<PackedRun, super::codec::CodecError> {
        Ok(PackedRun {
            summary: super::packed::pack(&super::packed::RunSummary::default())?,
            flags: super::packed::pack_flags(&[])?,
            points: super::packed::pack_points(&[])?,
        })
    }
}

/// A result's roofline points ([`crate::fleet::headline::point_records`]) as `points` keeps
/// them: what the roofline plots (operation, precision, size and the best and median rate),
/// not their bandwidths, efficiency, CV or flags (half the bytes).
fn points_of(figures: &[crate::fleet::FleetFigure]) -> Vec<crate::fleet::FleetFigure> {
    crate::fleet::headline::point_records(figures)
        .into_iter()
        .map(|f| crate::fleet::FleetFigure {
            run_id: String::new(),
            best_gbps: None,
            median_gbps: None,
            efficiency: None,
            cv_pct: None,
            above_theoretical: false,
            noisy: false,
            throttled: false,
            in_cache: false,
            bandwidth_eligible: false,
            ..f
        })
        .collect()
}

/// The packed values of a run, from `figures` (every record of its result).
pub(crate) fn packed_run(
    fleet: &crate::fleet::FleetRun,
    figures: &[crate::fleet::FleetFigure],
) -> Result<PackedRun, sqlx::Error> {
    let strip = |mut kept: Vec<crate::fleet::FleetFigure>| {
        kept.iter_mut().for_each(|f| f.run_id.clear());
        kept
    };
    let pack = || -> Result<PackedRun, super::codec::CodecError> {
        Ok(PackedRun {
            summary: super::packed::pack(&super::packed::RunSummary {
                peaks: fleet.peaks.clone(),
                anomalies: fleet.anomalies.clone(),
                figures: strip(crate::fleet::headline::headline_records(figures)),
            })?,
            flags: super::packed::pack_flags(&fleet.figure_flags)?,
            points: super::packed::pack_points(&points_of(figures))?,
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
    /// `points` (the roofline report).
    pub points: bool,
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
/// The packed `flags` and `points` of a fleet row, selected only by the reports that read
/// them (after [`FLEET_RUN_COLS`]).
pub(crate) const FLEET_FLAGS_COL: &str = ", r.flags";
/// See [`FLEET_FLAGS_COL`].
pub(crate) const FLEET_POINTS_COL: &str = ", r.points";

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
/// backends' parameter limits).
pub(crate) const RUNS_PER_INSERT: usize = 500;

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
            fn agent_from(row: &<$db as sqlx::Database>::Row) -> Result<AgentRecord, sqlx::Error> {
                let labels: String = row.try_get("labels")?;
                let caps: String = row.try_get("capabilities")?;
                Ok(AgentRecord {
                    agent_id: row.try_get("agent_id")?,
                    hostname: row.try_get("hostname")?,
                    labels: serde_json::from_str(&labels).map_err(|e| corrupt("labels", e))?,
                    preset: row.try_get("preset")?,
                    capabilities: serde_json::from_str(&caps)
                        .map_err(|e| corrupt("capabilities", e))?,
                    agent_version: row.try_get("agent_version")?,
                    registered_at: row.try_get("registered_at")?,
                    last_seen: row.try_get("last_seen")?,
                })
            }

            fn campaign_from(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<CampaignRecord, sqlx::Error> {
                let spec: String = row.try_get("spec")?;
                let schedule: Option<String> = row.try_get("schedule")?;
                let scheduled_at: Option<i64> = row.try_get("scheduled_at")?;
                let firing = match (schedule, scheduled_at) {
                    (Some(schedule), Some(scheduled_at)) => Some(FiringTag {
                        schedule,
                        scheduled_at,
                    }),
                    (None, None) => None,
                    _ => {
                        return Err(corrupt(
                            "scheduled_at",
                            "schedule and scheduled_at are set together or not at all",
                        ))
                    }
                };
                Ok(CampaignRecord {
                    id: row.try_get("id")?,
                    created_at: row.try_get("created_at")?,
                    deadline: row.try_get("deadline")?,
                    spec: serde_json::from_str(&spec).map_err(|e| corrupt("spec", e))?,
                    firing,
                })
            }

            fn schedule_from(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<ScheduleRecord, sqlx::Error> {
                let spec: String = row.try_get("spec")?;
                Ok(ScheduleRecord {
                    name: row.try_get("name")?,
                    spec: serde_json::from_str(&spec).map_err(|e| corrupt("spec", e))?,
                    paused: row.try_get("paused")?,
                    created_at: row.try_get("created_at")?,
                    handled_until: row.try_get("handled_until")?,
                })
            }

            fn firing_from(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<FiringRecord, sqlx::Error> {
                let outcome: String = row.try_get("outcome")?;
                Ok(FiringRecord {
                    schedule: row.try_get("schedule")?,
                    scheduled_at: row.try_get("scheduled_at")?,
                    outcome: outcome.parse().map_err(|e| corrupt("outcome", e))?,
                    campaign_id: row.try_get("campaign_id")?,
                    message: row.try_get("message")?,
                    recorded_at: row.try_get("recorded_at")?,
                })
            }

            /// One row of a `GROUP BY campaign_id, state` count.
            fn count_from(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<(String, RunState, u32), sqlx::Error> {
                let campaign: String = row.try_get("campaign_id")?;
                let state: String = row.try_get("state")?;
                let n: i64 = row.try_get("n")?;
                let state = state.parse().map_err(|e| corrupt("state", e))?;
                Ok((campaign, state, u32::try_from(n).unwrap_or(u32::MAX)))
            }

            fn campaign_key(row: &<$db as sqlx::Database>::Row) -> Result<CampaignKey, sqlx::Error> {
                Ok(CampaignKey {
                    created_at: row.try_get("created_at")?,
                    id: row.try_get("id")?,
                })
            }

            /// Inserts a campaign and its runs within a transaction.
            async fn insert_campaign(
                conn: &mut <$db as sqlx::Database>::Connection,
                c: &CampaignRecord,
                runs: &[RunRecord],
                ctx: &str,
            ) -> Result<(), Error> {
                let spec = serde_json::to_string(&c.spec).map_err(|e| {
                    Error::from($crate::domain::DomainError::InvalidRequest(format!(
                        "campaign spec cannot be stored: {e}"
                    )))
                })?;
                sqlx::query::<$db>(
                    "INSERT INTO campaigns (id, created_at, deadline, spec, schedule, scheduled_at) \
                     VALUES ($1,$2,$3,$4,$5,$6)",
                )
                .bind(&c.id)
                .bind(c.created_at)
                .bind(c.deadline)
                .bind(spec)
                .bind(c.firing.as_ref().map(|f| f.schedule.as_str()))
                .bind(c.firing.as_ref().map(|f| f.scheduled_at))
                .execute(&mut *conn)
                .await
                .map_err(Error::storage(ctx))?;
                // Many rows a statement: a campaign over a large fleet is a few statements,
                // not a round trip per run.
                for chunk in runs.chunks(super::sql::RUNS_PER_INSERT) {
                    let rows: Vec<String> = (0..chunk.len())
                        .map(|i| format!("({})", placeholders(1 + i * 14, 14)))
                        .collect();
                    let sql = format!(
                        "INSERT INTO runs (run_id, campaign_id, agent_id, hostname, preset_id, \
                         framework, device, state, fraction, message, seq, started_at, finished_at, \
                         not_before) VALUES {}",
                        rows.join(", ")
                    );
                    let mut q = sqlx::query::<$db>(&sql);
                    for r in chunk {
                        q = q
                            .bind(&r.run_id)
                            .bind(&r.campaign_id)
                            .bind(&r.agent_id)
                            .bind(&r.hostname)
                            .bind(&r.preset_id)
                            .bind(r.framework.as_str())
                            .bind(r.device.as_str())
                            .bind(r.state.as_str())
                            .bind(r.fraction)
                            .bind(&r.message)
                            .bind(r.seq)
                            .bind(r.started_at)
                            .bind(r.finished_at)
                            .bind(r.not_before);
                    }
                    q.execute(&mut *conn).await.map_err(Error::storage(ctx))?;
                }
                Ok(())
            }

            fn run_from(row: &<$db as sqlx::Database>::Row) -> Result<RunRecord, sqlx::Error> {
                let framework: String = row.try_get("framework")?;
                let device: String = row.try_get("device")?;
                let state: String = row.try_get("state")?;
                Ok(RunRecord {
                    run_id: row.try_get("run_id")?,
                    campaign_id: row.try_get("campaign_id")?,
                    agent_id: row.try_get("agent_id")?,
                    hostname: row.try_get("hostname")?,
                    preset_id: row.try_get("preset_id")?,
                    framework: framework.parse().map_err(|e| corrupt("framework", e))?,
                    device: device.parse().map_err(|e| corrupt("device", e))?,
                    state: state.parse().map_err(|e| corrupt("state", e))?,
                    fraction: row.try_get("fraction")?,
                    message: row.try_get("message")?,
                    seq: row.try_get("seq")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    not_before: row.try_get("not_before")?,
                })
            }

            /// `decode(row)`, or `None` after logging the row as [`skipped`].
            fn decode_or_skip<T>(
                row: &<$db as sqlx::Database>::Row,
                table: &str,
                id_column: &str,
                decode: impl Fn(&<$db as sqlx::Database>::Row) -> Result<T, sqlx::Error>,
            ) -> Option<T> {
                match decode(row) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        let id = row
                            .try_get::<String, _>(id_column)
                            .unwrap_or_else(|e| format!("<undecodable id: {e}>"));
                        skipped(table, &id, &e);
                        None
                    }
                }
            }

            /// Every row that decodes; the others are logged and left out.
            fn decoded<T>(
                rows: &[<$db as sqlx::Database>::Row],
                table: &str,
                id_column: &str,
                decode: impl Fn(&<$db as sqlx::Database>::Row) -> Result<T, sqlx::Error>,
            ) -> Vec<T> {
                rows.iter()
                    .filter_map(|row| Self::decode_or_skip(row, table, id_column, &decode))
                    .collect()
            }

            /// Keys and decoded rows of one page; `last` is the last row's key when the page
            /// is full.
            fn page<K: Clone, T>(
                rows: &[<$db as sqlx::Database>::Row],
                limit: u32,
                table: &str,
                id_column: &str,
                key: impl Fn(&<$db as sqlx::Database>::Row) -> Result<K, sqlx::Error>,
                decode: impl Fn(&<$db as sqlx::Database>::Row) -> Result<T, sqlx::Error>,
            ) -> Result<Page<K, T>, sqlx::Error> {
                let mut items = Vec::with_capacity(rows.len());
                let mut last = None;
                for row in rows {
                    let k = key(row)?;
                    if let Some(item) = Self::decode_or_skip(row, table, id_column, &decode) {
                        items.push((k.clone(), item));
                    }
                    last = Some(k);
                }
                let full = u32::try_from(rows.len()).is_ok_and(|n| n >= limit);
                Ok(Page {
                    items,
                    last: last.filter(|_| full),
                })
            }

            fn run_key(row: &<$db as sqlx::Database>::Row) -> Result<RunKey, sqlx::Error> {
                Ok(RunKey {
                    created_at: row.try_get("campaign_created_at")?,
                    campaign_id: row.try_get("campaign_id")?,
                    seq: row.try_get("seq")?,
                })
            }

            fn alert_from(row: &<$db as sqlx::Database>::Row) -> Result<AlertRecord, sqlx::Error> {
                let state: String = row.try_get("state")?;
                Ok(AlertRecord {
                    id: row.try_get("id")?,
                    agent_id: row.try_get("agent_id")?,
                    hostname: row.try_get("hostname")?,
                    group_key: row.try_get("group_key")?,
                    framework: row.try_get("framework")?,
                    figure: row.try_get("figure")?,
                    baseline: row.try_get("baseline")?,
                    current: row.try_get("current_value")?,
                    change_pct: row.try_get("change_pct")?,
                    kind: row.try_get("kind")?,
                    began_at: row.try_get("began_at")?,
                    run_id: row.try_get("run_id")?,
                    confirm_campaign_id: row.try_get("confirm_campaign_id")?,
                    state: AlertState::parse(&state).ok_or_else(|| {
                        corrupt("state", format!("unknown alert state {}", fleetcal_proto::quote::quoted(&state)))
                    })?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    message: row.try_get("message")?,
                })
            }

            /// Replaces an agent's rows in `agent_labels` with its labels.
            async fn write_labels(
                conn: &mut <$db as sqlx::Database>::Connection,
                a: &AgentRecord,
                ctx: &str,
            ) -> Result<(), Error> {
                sqlx::query::<$db>("DELETE FROM agent_labels WHERE agent_id = $1")
                    .bind(&a.agent_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(Error::storage(ctx))?;
                if a.labels.is_empty() {
                    return Ok(());
                }
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO agent_labels (agent_id, key, value) ",
                );
                insert.push_values(&a.labels, |mut b, (k, v)| {
                    b.push_bind(a.agent_id.as_str())
                        .push_bind(k.as_str())
                        .push_bind(v.as_str());
                });
                insert
                    .build()
                    .execute(&mut *conn)
                    .await
                    .map_err(Error::storage(ctx))?;
                Ok(())
            }

            /// Inserts a result's `fleet_runs` row with its packed summary
            /// ([`summary_of`]), within a transaction.
            async fn insert_fleet(
                conn: &mut <$db as sqlx::Database>::Connection,
                f: &FleetRun,
                packed: &PackedRun,
                ctx: &str,
            ) -> Result<(), Error> {
                sqlx::query::<$db>(
                    "INSERT INTO fleet_runs (run_id, campaign_id, schedule, agent_id, hostname, \
                     framework, device, fallback_from, preset_id, quick, started_at, stored_at, \
                     cpu_model, microarch, cores, logical_cpus, memory_gb, gpu_model, \
                     jetson_model, power_mode, blas, libtorch, tool_version, host_key, env_key, \
                     noise_floor_pct, bandwidth_gbps, bandwidth_efficiency, summary, flags, \
                     points) VALUES \
                     ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,\
                     $21,$22,$23,$24,$25,$26,$27,$28,$29,$30,$31)",
                )
                .bind(&f.run_id)
                .bind(&f.campaign_id)
                .bind(&f.schedule)
                .bind(&f.agent_id)
                .bind(&f.hostname)
                .bind(&f.framework)
                .bind(&f.device)
                .bind(&f.fallback_from)
                .bind(&f.preset_id)
                .bind(f.quick)
                .bind(f.started_at)
                .bind(f.stored_at)
                .bind(&f.facts.cpu_model)
                .bind(&f.facts.microarch)
                .bind(f.facts.cores.map(i64::from))
                .bind(f.facts.logical_cpus.map(i64::from))
                .bind(f.facts.memory_gb.map(i64::from))
                .bind(&f.facts.gpu_model)
                .bind(&f.facts.jetson_model)
                .bind(&f.facts.power_mode)
                .bind(&f.facts.blas)
                .bind(&f.facts.libtorch)
                .bind(&f.facts.tool_version)
                .bind(&f.host_key)
                .bind(&f.env_key)
                .bind(f.noise_floor_pct)
                .bind(f.bandwidth_gbps)
                .bind(f.bandwidth_efficiency)
                .bind(&packed.summary)
                .bind(&packed.flags)
                .bind(&packed.points)
                .execute(&mut *conn)
                .await
                .map_err(Error::storage(ctx))?;
                Ok(())
            }

            /// Starts the group-commit writer of [`Store::store_result`] on `pool`: it
            /// takes every result waiting (up to [`WRITE_BATCH`]), writes each under its own
            /// savepoint in one transaction, commits once and only then answers each caller.
            /// One commit (one WAL flush) for many results is what makes ingest fast while an
            /// acknowledged result stays durable. It ends when every sender is dropped.
            fn start_writer(pool: sqlx::Pool<$db>) -> tokio::sync::mpsc::Sender<PendingResult> {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<PendingResult>(WRITE_BATCH * 4);
                tokio::spawn(async move {
                    while let Some(first) = rx.recv().await {
                        let mut batch = vec![first];
                        while batch.len() < WRITE_BATCH {
                            match rx.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        Self::write_batch(pool.clone(), batch).await;
                    }
                });
                tx
            }

            /// Writes a batch of results in one transaction (see [`Self::start_writer`]);
            /// answers every caller: a result refused or failing alone is rolled back to
            /// its savepoint and does not fail the others; a failed commit fails every
            /// result that would have been stored.
            fn write_batch(
                pool: sqlx::Pool<$db>,
                batch: Vec<PendingResult>,
            ) -> impl std::future::Future<Output = ()> + Send {
                // A named `Send` future: spawned, it must not borrow across its awaits.
                async move {
                    let mut tx = match pool.begin().await {
                        Ok(tx) => tx,
                        Err(e) => return fail_results(batch, &e.to_string()),
                    };
                    let mut outcomes: Vec<(PendingResult, Result<StoreOutcome, Error>)> =
                        Vec::with_capacity(batch.len());
                    let mut rest = batch.into_iter();
                    while let Some(p) = rest.next() {
                        let step = Self::under_savepoint(&mut *tx, &p).await;
                        match step {
                            Ok(outcome) => outcomes.push((p, outcome)),
                            Err(e) => {
                                // The transaction is unusable: nothing of it is kept.
                                let _ = tx.rollback().await;
                                let mut failed: Vec<PendingResult> =
                                    outcomes.into_iter().map(|(p, _)| p).collect();
                                failed.push(p);
                                failed.extend(rest);
                                fail_results(failed, &e.to_string());
                                return;
                            }
                        }
                    }
                    if let Err(e) = tx.commit().await {
                        let e = e.to_string();
                        let mut failed = Vec::new();
                        for (p, outcome) in outcomes {
                            match outcome {
                                Ok(StoreOutcome::Stored) => failed.push(p),
                                other => {
                                    let _ = p.reply.send(other);
                                }
                            }
                        }
                        fail_results(failed, &e);
                        return;
                    }
                    for (p, outcome) in outcomes {
                        let _ = p.reply.send(outcome);
                    }
                }
            }

            /// [`Self::store_one`] under a savepoint: kept when stored, rolled back to the
            /// savepoint otherwise. The outer error is the savepoint's own (the transaction is
            /// then unusable).
            fn under_savepoint<'a>(
                conn: &'a mut <$db as sqlx::Database>::Connection,
                p: &'a PendingResult,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<Output = Result<Result<StoreOutcome, Error>, sqlx::Error>>
                        + Send
                        + 'a,
                >,
            > {
                // Boxed: the writer task is spawned, and proving a spawned future `Send`
                // through sqlx's executor lifetimes needs them erased here.
                Box::pin(async move {
                    sqlx::query::<$db>("SAVEPOINT one_result").execute(&mut *conn).await?;
                    let outcome = Self::store_one(&mut *conn, p).await;
                    if !matches!(outcome, Ok(StoreOutcome::Stored)) {
                        sqlx::query::<$db>("ROLLBACK TO SAVEPOINT one_result")
                            .execute(&mut *conn)
                            .await?;
                    }
                    sqlx::query::<$db>("RELEASE SAVEPOINT one_result").execute(&mut *conn).await?;
                    Ok(outcome)
                })
            }

            /// One result's statements inside the writer's transaction: `Duplicate` when the
            /// run already has a result, `RunNotAccepting` when it is not running (the caller
            /// rolls back to the savepoint either way).
            async fn store_one(
                conn: &mut <$db as sqlx::Database>::Connection,
                p: &PendingResult,
            ) -> Result<StoreOutcome, Error> {
                let run = &p.run;
                let ctx = format!("storing the result of run '{}'", run.run_id);
                let inserted = sqlx::query::<$db>(
                    "INSERT INTO results (run_id, agent_id, stored_at, result_json, result_zstd) \
                     VALUES ($1,$2,$3,$4,$5) ON CONFLICT (run_id) DO NOTHING",
                )
                .bind(&run.run_id)
                .bind(&run.agent_id)
                .bind(p.at)
                .bind("")
                .bind(p.compressed.as_slice())
                .execute(&mut *conn)
                .await
                .map_err(Error::storage(&ctx))?;
                if inserted.rows_affected() == 0 {
                    return Ok(StoreOutcome::Duplicate);
                }
                let updated = sqlx::query::<$db>(
                    "UPDATE runs SET state = 'succeeded', finished_at = $1, fraction = 1.0, \
                     message = '' WHERE run_id = $2 AND state = 'running'",
                )
                .bind(p.at)
                .bind(&run.run_id)
                .execute(&mut *conn)
                .await
                .map_err(Error::storage(&ctx))?;
                if updated.rows_affected() == 0 {
                    let state: String = sqlx::query_scalar::<$db, String>(
                        "SELECT state FROM runs WHERE run_id = $1",
                    )
                    .bind(&run.run_id)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(Error::storage(&ctx))?;
                    return Err($crate::domain::DomainError::RunNotAccepting {
                        run: run.run_id.clone(),
                        state,
                        what: "result",
                    }
                    .into());
                }
                Self::insert_fleet(&mut *conn, &p.fleet, &p.packed, &ctx).await?;
                Ok(StoreOutcome::Stored)
            }

            /// Fills in what rows written before lack: the `agent_labels` of agents
            /// registered before schema v4, the fleet rows of results stored before it, and
            /// the packed summary of fleet rows written before schema v12. Each such result
            /// document is parsed once; one that does not parse is logged and left out of the
            /// reports (a fleet row's summary is then left empty: its peaks and anomaly lines
            /// were in the tables v12 dropped).
            async fn backfill(&self) -> Result<(), Error> {
                let ctx = "filling in the rows of schema v4";
                let agents = sqlx::query::<$db>(
                    "SELECT * FROM agents a WHERE labels <> '{}' AND NOT EXISTS \
                     (SELECT 1 FROM agent_labels l WHERE l.agent_id = a.agent_id)",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage(ctx))?;
                for a in Self::decoded(&agents, "agents", "agent_id", Self::agent_from) {
                    let mut tx = self.pool.begin().await.map_err(Error::storage(ctx))?;
                    Self::write_labels(&mut *tx, &a, ctx).await?;
                    tx.commit().await.map_err(Error::storage(ctx))?;
                }
                // A page of documents at a time (each may be hundreds of KB), by run id.
                let sql = format!(
                    "SELECT {RUN_COLS}, c.schedule AS campaign_schedule, res.stored_at, \
                     res.result_json, res.result_zstd FROM results res \
                     JOIN runs r ON r.run_id = res.run_id JOIN campaigns c ON c.id = r.campaign_id \
                     WHERE res.run_id > $1 AND NOT EXISTS \
                     (SELECT 1 FROM fleet_runs f WHERE f.run_id = res.run_id) \
                     ORDER BY res.run_id LIMIT 64"
                );
                let mut after = String::new();
                loop {
                    let rows = sqlx::query::<$db>(&sql)
                        .bind(&after)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(Error::storage(ctx))?;
                    let Some(last) = rows.last() else {
                        break;
                    };
                    after = last.try_get("run_id").map_err(Error::storage(ctx))?;
                    let old = Self::decoded(&rows, "results", "run_id", |row| {
                        let run = Self::run_from(row)?;
                        let schedule: Option<String> = row.try_get("campaign_schedule")?;
                        let stored_at: i64 = row.try_get("stored_at")?;
                        let text =
                            document(row.try_get("result_json")?, row.try_get("result_zstd")?)?;
                        let result =
                            fleetcal_proto::CalibrationResult::from_json(&text, "stored result")
                                .map_err(|e| corrupt("result_json", e))?;
                        let fleet =
                            FleetRun::from_result(&run, schedule.as_deref(), &result, stored_at);
                        let figures = FleetFigure::from_result(&run.run_id, &result);
                        Ok((packed_run(&fleet, &figures)?, fleet))
                    });
                    for (packed, fleet) in old {
                        let mut tx = self.pool.begin().await.map_err(Error::storage(ctx))?;
                        Self::insert_fleet(&mut *tx, &fleet, &packed, ctx).await?;
                        tx.commit().await.map_err(Error::storage(ctx))?;
                    }
                }
                self.backfill_summaries().await
            }

            /// Fills in the packed summary of every fleet row written before schema v13,
            /// from its result document, a page at a time (logging progress on a large
            /// database).
            async fn backfill_summaries(&self) -> Result<(), Error> {
                let ctx = "making the run summaries of schema v13";
                let sql = format!(
                    "SELECT {RUN_COLS}, res.result_json, res.result_zstd FROM fleet_runs f \
                     JOIN results res ON res.run_id = f.run_id JOIN runs r ON r.run_id = f.run_id \
                     WHERE f.flags IS NULL AND f.run_id > $1 ORDER BY f.run_id LIMIT 256"
                );
                let mut after = String::new();
                let mut done = 0_u64;
                loop {
                    let rows = sqlx::query::<$db>(&sql)
                        .bind(&after)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(Error::storage(ctx))?;
                    let Some(last) = rows.last() else {
                        break;
                    };
                    after = last.try_get("run_id").map_err(Error::storage(ctx))?;
                    // Decoding is CPU work (a third of a millisecond a quick result): the
                    // page's documents over the cores, off the async threads.
                    let mut page = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let run_id: String = row.try_get("run_id").map_err(Error::storage(ctx))?;
                        let read = (|| -> Result<_, sqlx::Error> {
                            let plain: String = row.try_get("result_json")?;
                            let compressed: Option<Vec<u8>> = row.try_get("result_zstd")?;
                            Ok((Self::run_from(row)?, plain, compressed))
                        })();
                        page.push((run_id, read));
                    }
                    let summaries = tokio::task::spawn_blocking(move || {
                        crate::par::par_map(page, |(run_id, read)| {
                            let summary = read.and_then(|(run, plain, compressed)| {
                                let result = match compressed {
                                    Some(bytes) => super::codec::decode_result(&bytes)
                                        .map_err(|e| corrupt("result_zstd", e))?,
                                    None => fleetcal_proto::CalibrationResult::from_json(
                                        &plain,
                                        "stored result",
                                    )
                                    .map_err(|e| corrupt("result_json", e))?,
                                };
                                let fleet = FleetRun::from_result(&run, None, &result, 0);
                                packed_run(&fleet, &FleetFigure::from_result(&run_id, &result))
                            });
                            (run_id, summary)
                        })
                    })
                    .await
                    .map_err(|e| Error::storage(ctx)(sqlx::Error::Protocol(e.to_string())))?;
                    let mut tx = self.pool.begin().await.map_err(Error::storage(ctx))?;
                    for (run_id, decoded) in summaries {
                        let packed = match decoded {
                            Ok(packed) => packed,
                            Err(e) => {
                                // Left out of the reports: empty values (the peaks and
                                // anomaly lines were in the tables v12 dropped).
                                skipped("results", &run_id, &e);
                                PackedRun::empty()
                                    .map_err(|e| Error::storage(ctx)(corrupt("summary", e)))?
                            }
                        };
                        sqlx::query::<$db>(
                            "UPDATE fleet_runs SET summary = $1, flags = $2, points = $3 \
                             WHERE run_id = $4",
                        )
                        .bind(&packed.summary)
                        .bind(&packed.flags)
                        .bind(&packed.points)
                        .bind(&run_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::storage(ctx))?;
                    }
                    tx.commit().await.map_err(Error::storage(ctx))?;
                    done += rows.len() as u64;
                    if done % 10_240 == 0 {
                        tracing::info!("{ctx}: {done} runs so far");
                    }
                }
                if done > 0 {
                    tracing::info!("{ctx}: {done} runs");
                }
                Ok(())
            }
        }

        impl Store for $store {
            async fn upsert_agent(&self, a: &AgentRecord) -> Result<(), Error> {
                let labels = serde_json::to_string(&a.labels).expect("labels serialise");
                let caps = serde_json::to_string(&a.capabilities).expect("capabilities serialise");
                let ctx = format!("registering agent '{}'", a.agent_id);
                let mut tx = self.pool.begin().await.map_err(Error::storage(&ctx))?;
                sqlx::query::<$db>(
                    "INSERT INTO agents (agent_id, hostname, labels, preset, capabilities, \
                     agent_version, registered_at, last_seen) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) \
                     ON CONFLICT (agent_id) DO UPDATE SET hostname = excluded.hostname, \
                     labels = excluded.labels, preset = excluded.preset, \
                     capabilities = excluded.capabilities, agent_version = excluded.agent_version, \
                     last_seen = excluded.last_seen, removed_at = NULL",
                )
                .bind(&a.agent_id)
                .bind(&a.hostname)
                .bind(labels)
                .bind(&a.preset)
                .bind(caps)
                .bind(&a.agent_version)
                .bind(a.registered_at)
                .bind(a.last_seen)
                .execute(&mut *tx)
                .await
                .map_err(Error::storage(&ctx))?;
                Self::write_labels(&mut *tx, a, &ctx).await?;
                tx.commit().await.map_err(Error::storage(&ctx))
            }

            async fn touch_agent(&self, agent_id: &str, at: i64) -> Result<bool, Error> {
                let done = sqlx::query::<$db>("UPDATE agents SET last_seen = $1 WHERE agent_id = $2 AND removed_at IS NULL",
                )
                    .bind(at)
                    .bind(agent_id)
                    .execute(&self.pool)
                    .await
                    .map_err(Error::storage(format!("touching agent '{agent_id}'")))?;
                Ok(done.rows_affected() == 1)
            }

            async fn touch_agents(&self, contacts: &[(String, i64)]) -> Result<Vec<String>, Error> {
                let ctx = format!("recording the contact of {} agents", contacts.len());
                let mut tx = self.pool.begin().await.map_err(Error::storage(&ctx))?;
                let mut unknown = Vec::new();
                for (agent_id, at) in contacts {
                    let done = sqlx::query::<$db>(
                        "UPDATE agents SET last_seen = $1, stream_seen = $2 \
                         WHERE agent_id = $3 AND removed_at IS NULL",
                    )
                    .bind(at)
                    .bind(at)
                    .bind(agent_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(&ctx))?;
                    if done.rows_affected() == 0 {
                        unknown.push(agent_id.clone());
                    }
                }
                tx.commit().await.map_err(Error::storage(&ctx))?;
                Ok(unknown)
            }

            async fn agent(&self, agent_id: &str) -> Result<Option<AgentRecord>, Error> {
                let row = sqlx::query::<$db>("SELECT * FROM agents WHERE agent_id = $1 AND removed_at IS NULL",
                )
                    .bind(agent_id)
                    .fetch_optional(&self.pool)
                    .await
                    .and_then(|r| r.as_ref().map(Self::agent_from).transpose())
                    .map_err(Error::storage(format!("reading agent '{agent_id}'")))?;
                Ok(row)
            }

            async fn agents(&self) -> Result<Vec<AgentRecord>, Error> {
                let rows = sqlx::query::<$db>(
                    "SELECT * FROM agents WHERE removed_at IS NULL ORDER BY hostname, agent_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage("listing agents"))?;
                Ok(Self::decoded(&rows, "agents", "agent_id", Self::agent_from))
            }

            async fn agents_page(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Page<String, AgentRecord>, Error> {
                sqlx::query::<$db>(
                    "SELECT * FROM agents WHERE removed_at IS NULL \
                     AND ($1 IS NULL OR agent_id > $2) ORDER BY agent_id LIMIT $3",
                )
                .bind(after)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .and_then(|rows| {
                    Self::page(
                        &rows,
                        limit,
                        "agents",
                        "agent_id",
                        |row| row.try_get("agent_id"),
                        Self::agent_from,
                    )
                })
                .map_err(Error::storage("listing agents"))
            }

            async fn remove_agent(
                &self,
                agent_id: &str,
                at: i64,
                message: &str,
            ) -> Result<RemoveOutcome, Error> {
                let ctx = format!("removing agent {}", fleetcal_proto::quote::quoted(agent_id));
                let mut tx = self.pool.begin().await.map_err(Error::storage(&ctx))?;
                let removed = sqlx::query::<$db>(
                    "UPDATE agents SET removed_at = $1 WHERE agent_id = $2 AND removed_at IS NULL",
                )
                .bind(at)
                .bind(agent_id)
                .execute(&mut *tx)
                .await
                .map_err(Error::storage(&ctx))?;
                if removed.rows_affected() == 0 {
                    tx.rollback().await.map_err(Error::storage(&ctx))?;
                    return Ok(RemoveOutcome::NotFound);
                }
                let running: Option<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT run_id FROM runs WHERE agent_id = $1 AND state = 'running' \
                     ORDER BY run_id LIMIT 1",
                )
                .bind(agent_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(Error::storage(&ctx))?;
                if let Some(run_id) = running {
                    tx.rollback().await.map_err(Error::storage(&ctx))?;
                    return Ok(RemoveOutcome::Running { run_id });
                }
                let failed = sqlx::query::<$db>(
                    "UPDATE runs SET state = 'failed', finished_at = $1, message = $2 \
                     WHERE agent_id = $3 AND state = 'queued'",
                )
                .bind(at)
                .bind(message)
                .bind(agent_id)
                .execute(&mut *tx)
                .await
                .map_err(Error::storage(&ctx))?;
                tx.commit().await.map_err(Error::storage(&ctx))?;
                Ok(RemoveOutcome::Removed {
                    failed_runs: failed.rows_affected(),
                })
            }

            async fn create_campaign(
                &self,
                c: &CampaignRecord,
                runs: &[RunRecord],
            ) -> Result<(), Error> {
                let ctx = format!("creating campaign '{}'", c.id);
                let mut tx = self.pool.begin().await.map_err(Error::storage(&ctx))?;
                Self::insert_campaign(&mut *tx, c, runs, &ctx).await?;
                tx.commit().await.map_err(Error::storage(&ctx))
            }

            async fn campaign(&self, id: &str) -> Result<Option<CampaignRecord>, Error> {
                sqlx::query::<$db>(&format!("SELECT {CAMPAIGN_COLS} FROM campaigns c WHERE c.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .and_then(|r| r.as_ref().map(Self::campaign_from).transpose())
                    .map_err(Error::storage(format!("reading campaign '{id}'")))
            }

            async fn active_campaigns(&self) -> Result<Vec<CampaignRecord>, Error> {
                sqlx::query::<$db>(&format!(
                    "SELECT {CAMPAIGN_COLS} FROM campaigns c WHERE c.id IN \
                     (SELECT campaign_id FROM runs WHERE state IN ('queued', 'running')) \
                     ORDER BY c.created_at, c.id"
                ))
                .fetch_all(&self.pool)
                .await
                .map(|rows| Self::decoded(&rows, "campaigns", "id", Self::campaign_from))
                .map_err(Error::storage("listing active campaigns"))
            }

            async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
                sqlx::query::<$db>(&format!("SELECT {RUN_COLS} FROM runs r WHERE r.run_id = $1"))
                    .bind(run_id)
                    .fetch_optional(&self.pool)
                    .await
                    .and_then(|r| r.as_ref().map(Self::run_from).transpose())
                    .map_err(Error::storage(format!("reading run '{run_id}'")))
            }

            async fn runs(&self, campaign_id: Option<&str>) -> Result<Vec<RunRecord>, Error> {
                let sql = format!(
                    "SELECT {RUN_COLS} FROM runs r JOIN campaigns c ON c.id = r.campaign_id \
                     WHERE ($1 IS NULL OR r.campaign_id = $2) ORDER BY c.created_at, c.id, r.seq"
                );
                sqlx::query::<$db>(&sql)
                    .bind(campaign_id)
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await
                    .map(|rows| Self::decoded(&rows, "runs", "run_id", Self::run_from))
                    .map_err(Error::storage("listing runs"))
            }

            async fn runs_ended_badly(&self, campaign_ids: &[String]) -> Result<Vec<RunRecord>, Error> {
                let ctx = "reading the runs that ended without a result";
                let mut out = Vec::new();
                for chunk in campaign_ids.chunks(IDS_PER_QUERY) {
                    let sql = format!(
                        "SELECT {RUN_COLS} FROM runs r WHERE r.campaign_id IN ({}) \
                         AND r.state IN ('failed', 'timed_out', 'agent_offline') \
                         ORDER BY r.campaign_id, r.seq",
                        placeholders(1, chunk.len())
                    );
                    let mut query = sqlx::query::<$db>(&sql);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    let rows = query.fetch_all(&self.pool).await.map_err(Error::storage(ctx))?;
                    out.extend(Self::decoded(&rows, "runs", "run_id", Self::run_from));
                }
                Ok(out)
            }

            async fn runs_page(
                &self,
                campaign_id: Option<&str>,
                after: Option<&RunKey>,
                limit: u32,
            ) -> Result<Page<RunKey, RunRecord>, Error> {
                // Keyset paging over (campaign created_at, campaign id, seq), spelled out
                // rather than as a row value, with every parameter used once.
                let sql = format!(
                    "SELECT {RUN_COLS}, c.created_at AS campaign_created_at FROM runs r \
                     JOIN campaigns c ON c.id = r.campaign_id \
                     WHERE ($1 IS NULL OR r.campaign_id = $2) \
                     AND ($3 IS NULL OR c.created_at > $4 OR (c.created_at = $5 AND \
                     (c.id > $6 OR (c.id = $7 AND r.seq > $8)))) \
                     ORDER BY c.created_at, c.id, r.seq LIMIT $9"
                );
                let created = after.map(|k| k.created_at);
                let id = after.map(|k| k.campaign_id.as_str());
                let seq = after.map(|k| k.seq);
                sqlx::query::<$db>(&sql)
                    .bind(campaign_id)
                    .bind(campaign_id)
                    .bind(created)
                    .bind(created)
                    .bind(created)
                    .bind(id)
                    .bind(id)
                    .bind(seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .and_then(|rows| {
                        Self::page(&rows, limit, "runs", "run_id", Self::run_key, Self::run_from)
                    })
                    .map_err(Error::storage("listing runs"))
            }

            async fn active_runs(&self) -> Result<Vec<RunRecord>, Error> {
                let sql = format!(
                    "SELECT {RUN_COLS} FROM runs r WHERE r.state IN ('queued', 'running') \
                     ORDER BY r.campaign_id, r.seq"
                );
                sqlx::query::<$db>(&sql)
                    .fetch_all(&self.pool)
                    .await
                    .map(|rows| Self::decoded(&rows, "runs", "run_id", Self::run_from))
                    .map_err(Error::storage("listing active runs"))
            }

            async fn transition(&self, t: &Transition) -> Result<bool, Error> {
                let sql = if t.to == RunState::Running {
                    "UPDATE runs SET state = $1, started_at = $2, message = COALESCE($3, message) \
                     WHERE run_id = $4 AND state = $5"
                } else {
                    "UPDATE runs SET state = $1, finished_at = $2, message = COALESCE($3, message) \
                     WHERE run_id = $4 AND state = $5"
                };
                let done = sqlx::query::<$db>(sql)
                    .bind(t.to.as_str())
                    .bind(t.at)
                    .bind(&t.message)
                    .bind(&t.run_id)
                    .bind(t.from.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(Error::storage(format!("updating run '{}'", t.run_id)))?;
                Ok(done.rows_affected() == 1)
            }

            async fn transitions(
                &self,
                ts: &[Transition],
                lease: &RunLease,
            ) -> Result<std::collections::HashSet<String>, Error> {
                let mut changed = std::collections::HashSet::new();
                if ts.is_empty() {
                    return Ok(changed);
                }
                let ctx = format!("updating {} runs", ts.len());
                // Grouped by what they set: one statement per group and chunk of run ids.
                let mut groups: std::collections::BTreeMap<_, Vec<&str>> =
                    std::collections::BTreeMap::new();
                for t in ts {
                    groups
                        .entry((t.from.as_str(), t.to.as_str(), t.at, t.message.as_deref()))
                        .or_default()
                        .push(t.run_id.as_str());
                }
                let mut tx = self.pool.begin().await.map_err(Error::storage(&ctx))?;
                for ((from, to, at, message), ids) in groups {
                    // A run started is leased to this coordinator (as start_run does one).
                    let starting = to == RunState::Running.as_str();
                    let column = if starting { "started_at" } else { "finished_at" };
                    for chunk in ids.chunks(super::sql::TRANSITIONS_PER_STATEMENT) {
                        let sql = format!(
                            "UPDATE runs SET state = $1, {column} = $2, message = COALESCE($3, message), \
                             lease_owner = CASE WHEN $4 THEN $5 ELSE lease_owner END, \
                             lease_expires = CASE WHEN $6 THEN $7 ELSE lease_expires END \
                             WHERE state = $8 AND run_id IN ({}) RETURNING run_id",
                            placeholders(9, chunk.len())
                        );
                        let mut q = sqlx::query::<$db>(&sql)
                            .bind(to)
                            .bind(at)
                            .bind(message)
                            .bind(starting)
                            .bind(&lease.owner)
                            .bind(starting)
                            .bind(lease.expires)
                            .bind(from);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        let rows = q.fetch_all(&mut *tx).await.map_err(Error::storage(&ctx))?;
                        for row in &rows {
                            changed.insert(
                                row.try_get::<String, _>("run_id").map_err(Error::storage(&ctx))?,
                            );
                        }
                    }
                }
                tx.commit().await.map_err(Error::storage(&ctx))?;
                Ok(changed)
            }

            async fn progress(&self, run_id: &str, fraction: f64, message: &str) -> Result<bool, Error> {
                let done = sqlx::query::<$db>(
                    "UPDATE runs SET fraction = $1, message = $2 WHERE run_id = $3 AND state = 'running'",
                )
                .bind(fraction)
                .bind(message)
                .bind(run_id)
                .execute(&self.pool)
                .await
                .map_err(Error::storage(format!("recording progress of run '{run_id}'")))?;
                Ok(done.rows_affected() == 1)
            }

            async fn store_result(
                &self,
                run: &RunRecord,
                result_json: &str,
                result: Option<&fleetcal_proto::CalibrationResult>,
                fleet: &FleetRun,
                at: i64,
            ) -> Result<StoreOutcome, Error> {
                let ctx = format!("storing the result of run '{}'", run.run_id);
                // Encoded here, on the caller's task: the writer only writes.
                let compressed = compress(result_json, result).map_err(Error::storage(&ctx))?;
                let figures = result
                    .map(|r| FleetFigure::from_result(&run.run_id, r))
                    .unwrap_or_default();
                let packed = packed_run(fleet, &figures).map_err(Error::storage(&ctx))?;
                let (reply, answer) = tokio::sync::oneshot::channel();
                let pending = PendingResult {
                    run: run.clone(),
                    compressed,
                    fleet: fleet.clone(),
                    packed,
                    at,
                    reply,
                };
                let gone = || Error::storage(&ctx)(sqlx::Error::PoolClosed);
                self.writer.send(pending).await.map_err(|_| gone())?;
                answer.await.map_err(|_| gone())?
            }

            async fn results(&self, campaign_id: &str) -> Result<Vec<(RunRecord, String)>, Error> {
                let sql = format!(
                    "SELECT {RUN_COLS}, res.result_json, res.result_zstd FROM results res \
                     JOIN runs r ON r.run_id = res.run_id WHERE r.campaign_id = $1 ORDER BY r.seq"
                );
                sqlx::query::<$db>(&sql)
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await
                    .map(|rows| {
                        Self::decoded(&rows, "results", "run_id", |row| {
                            let text =
                                document(row.try_get("result_json")?, row.try_get("result_zstd")?)?;
                            Ok((Self::run_from(row)?, text))
                        })
                    })
                    .map_err(Error::storage(format!("reading results of campaign '{campaign_id}'")))
            }

            async fn result_rows(&self, run_id: &str) -> Result<Vec<FleetFigure>, Error> {
                self.fleet_figures(&[run_id.to_string()]).await
            }

            async fn fleet_figures(&self, run_ids: &[String]) -> Result<Vec<FleetFigure>, Error> {
                let ctx = "reading the figures of stored results";
                let mut docs: std::collections::HashMap<String, StoredDocument> =
                    std::collections::HashMap::with_capacity(run_ids.len());
                for chunk in run_ids.chunks(IDS_PER_QUERY) {
                    let sql = format!(
                        "SELECT run_id, result_json, result_zstd FROM results \
                         WHERE run_id IN ({})",
                        placeholders(1, chunk.len())
                    );
                    let mut query = sqlx::query::<$db>(&sql);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    for row in query.fetch_all(&self.pool).await.map_err(Error::storage(ctx))? {
                        let doc = (|| -> Result<_, sqlx::Error> {
                            Ok((
                                row.try_get::<String, _>("run_id")?,
                                (row.try_get("result_json")?, row.try_get("result_zstd")?),
                            ))
                        })();
                        match doc {
                            Ok((id, doc)) => {
                                docs.insert(id, doc);
                            }
                            Err(e) => skipped("results", "<unknown>", &e),
                        }
                    }
                }
                // Decoding is CPU work (~0.5 ms a quick result): off the async threads,
                // spread over the cores, in the order asked.
                let ordered: Vec<(String, StoredDocument)> = run_ids
                    .iter()
                    .filter_map(|id| docs.remove(id).map(|doc| (id.clone(), doc)))
                    .collect();
                let figures = tokio::task::spawn_blocking(move || decode_documents(ordered))
                    .await
                    .map_err(|e| Error::storage(ctx)(sqlx::Error::Protocol(e.to_string())))?;
                Ok(figures)
            }

            async fn campaigns_page(
                &self,
                schedule: Option<&str>,
                after: Option<&CampaignKey>,
                limit: u32,
            ) -> Result<Page<CampaignKey, (CampaignRecord, RunCounts)>, Error> {
                let created = after.map(|k| k.created_at);
                let id = after.map(|k| k.id.as_str());
                let sql = format!(
                    "SELECT {CAMPAIGN_COLS} FROM campaigns c WHERE {CAMPAIGN_PAGE_WHERE} \
                     ORDER BY c.created_at DESC, c.id DESC LIMIT $7"
                );
                let rows = sqlx::query::<$db>(&sql)
                    .bind(schedule)
                    .bind(schedule)
                    .bind(created)
                    .bind(created)
                    .bind(created)
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(Error::storage("listing campaigns"))?;
                let page = Self::page(
                    &rows,
                    limit,
                    "campaigns",
                    "id",
                    Self::campaign_key,
                    Self::campaign_from,
                )
                .map_err(Error::storage("listing campaigns"))?;
                // The run counts of the same page, in one query.
                let sql = format!(
                    "SELECT r.campaign_id, r.state, COUNT(*) AS n FROM runs r WHERE r.campaign_id IN \
                     (SELECT c.id FROM campaigns c WHERE {CAMPAIGN_PAGE_WHERE} \
                     ORDER BY c.created_at DESC, c.id DESC LIMIT $7) \
                     GROUP BY r.campaign_id, r.state"
                );
                let counted = sqlx::query::<$db>(&sql)
                    .bind(schedule)
                    .bind(schedule)
                    .bind(created)
                    .bind(created)
                    .bind(created)
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(Error::storage("counting the runs of listed campaigns"))?;
                let mut counts: std::collections::HashMap<String, Vec<(RunState, u32)>> =
                    std::collections::HashMap::new();
                for row in &counted {
                    match Self::count_from(row) {
                        Ok((campaign, state, n)) => {
                            counts.entry(campaign).or_default().push((state, n))
                        }
                        Err(e) => {
                            let campaign = row
                                .try_get::<String, _>("campaign_id")
                                .unwrap_or_default();
                            skipped("runs", &format!("of campaign {campaign}"), &e);
                        }
                    }
                }
                Ok(Page {
                    items: page
                        .items
                        .into_iter()
                        .map(|(k, c)| {
                            let n = counts_from(counts.remove(&c.id).unwrap_or_default());
                            (k, (c, n))
                        })
                        .collect(),
                    last: page.last,
                })
            }

            async fn add_schedule(&self, s: &ScheduleRecord) -> Result<bool, Error> {
                let spec = serde_json::to_string(&s.spec).map_err(|e| {
                    Error::from($crate::domain::DomainError::InvalidRequest(format!(
                        "schedule spec cannot be stored: {e}"
                    )))
                })?;
                let done = sqlx::query::<$db>(
                    "INSERT INTO schedules (name, spec, paused, created_at, handled_until) \
                     VALUES ($1,$2,$3,$4,$5) ON CONFLICT (name) DO NOTHING",
                )
                .bind(&s.name)
                .bind(spec)
                .bind(s.paused)
                .bind(s.created_at)
                .bind(s.handled_until)
                .execute(&self.pool)
                .await
                .map_err(Error::storage(format!("adding schedule '{}'", s.name)))?;
                Ok(done.rows_affected() == 1)
            }

            async fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, Error> {
                sqlx::query::<$db>("SELECT * FROM schedules WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .and_then(|r| r.as_ref().map(Self::schedule_from).transpose())
                    .map_err(Error::storage(format!("reading schedule '{name}'")))
            }

            async fn schedules(&self) -> Result<Vec<ScheduleRecord>, Error> {
                sqlx::query::<$db>("SELECT * FROM schedules ORDER BY name")
                    .fetch_all(&self.pool)
                    .await
                    .map(|rows| Self::decoded(&rows, "schedules", "name", Self::schedule_from))
                    .map_err(Error::storage("listing schedules"))
            }

            async fn remove_schedule(&self, name: &str) -> Result<bool, Error> {
                let ctx = format!("removing schedule '{name}'");
                let mut tx = self.pool.begin().await.map_err(Error::storage(&ctx))?;
                // A write on the schedule's row first, as a claim does: a claim in flight
                // finishes before its firings are deleted, and none starts after.
                let found = sqlx::query::<$db>("UPDATE schedules SET paused = $1 WHERE name = $2")
                    .bind(true)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(&ctx))?;
                if found.rows_affected() == 0 {
                    tx.rollback().await.map_err(Error::storage(&ctx))?;
                    return Ok(false);
                }
                sqlx::query::<$db>("DELETE FROM schedule_firings WHERE schedule = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(&ctx))?;
                sqlx::query::<$db>("DELETE FROM schedules WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(&ctx))?;
                tx.commit().await.map_err(Error::storage(&ctx))?;
                Ok(true)
            }

            async fn set_schedule_paused(
                &self,
                name: &str,
                paused: bool,
                at: i64,
            ) -> Result<bool, Error> {
                // Every right-hand side sees the row before the update: only a paused
                // schedule that is resumed moves handled_until.
                let done = sqlx::query::<$db>(
                    "UPDATE schedules SET handled_until = CASE WHEN paused AND $1 \
                     AND handled_until < $2 THEN $3 ELSE handled_until END, paused = $4 \
                     WHERE name = $5",
                )
                .bind(!paused)
                .bind(at)
                .bind(at)
                .bind(paused)
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(Error::storage(format!("pausing or resuming schedule '{name}'")))?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_firings(&self, claim: Claim<'_>) -> Result<ClaimOutcome, Error> {
                let ctx = format!("recording firings of schedule '{}'", claim.schedule);
                let mut tx = self.pool.begin().await.map_err(Error::storage(&ctx))?;
                // A write first: it takes the schedule's row (PostgreSQL) or the database's
                // write lock (SQLite), so concurrent claims of one schedule queue up here.
                let until = claim.handled_until.unwrap_or(i64::MIN);
                let guarded = sqlx::query::<$db>(
                    "UPDATE schedules SET handled_until = CASE WHEN handled_until < $1 THEN $2 \
                     ELSE handled_until END WHERE name = $3 AND (paused = $4 OR $5)",
                )
                .bind(until)
                .bind(until)
                .bind(claim.schedule)
                .bind(false)
                .bind(claim.even_paused)
                .execute(&mut *tx)
                .await
                .map_err(Error::storage(&ctx))?;
                if guarded.rows_affected() == 0 {
                    tx.rollback().await.map_err(Error::storage(&ctx))?;
                    return Ok(ClaimOutcome::NoSchedule);
                }
                if let Some((campaign, runs, message)) = claim.fired {
                    let scheduled_at = campaign.firing.as_ref().map_or(claim.at, |f| f.scheduled_at);
                    let inserted = sqlx::query::<$db>(
                        "INSERT INTO schedule_firings (schedule, scheduled_at, outcome, \
                         campaign_id, message, recorded_at) VALUES ($1,$2,$3,$4,$5,$6) \
                         ON CONFLICT (schedule, scheduled_at) DO NOTHING",
                    )
                    .bind(claim.schedule)
                    .bind(scheduled_at)
                    .bind(FiringOutcome::Fired.as_str())
                    .bind(Option::<&str>::None)
                    .bind(message)
                    .bind(claim.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(&ctx))?;
                    if inserted.rows_affected() == 0 {
                        let campaign_id: Option<String> = sqlx::query_scalar::<$db, Option<String>>(
                            "SELECT campaign_id FROM schedule_firings \
                             WHERE schedule = $1 AND scheduled_at = $2",
                        )
                        .bind(claim.schedule)
                        .bind(scheduled_at)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(Error::storage(&ctx))?
                        .flatten();
                        tx.rollback().await.map_err(Error::storage(&ctx))?;
                        return Ok(ClaimOutcome::Taken { campaign_id });
                    }
                    Self::insert_campaign(&mut *tx, campaign, runs, &ctx).await?;
                    sqlx::query::<$db>(
                        "UPDATE schedule_firings SET campaign_id = $1 \
                         WHERE schedule = $2 AND scheduled_at = $3",
                    )
                    .bind(&campaign.id)
                    .bind(claim.schedule)
                    .bind(scheduled_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(&ctx))?;
                }
                for (scheduled_at, message) in claim.missed {
                    sqlx::query::<$db>(
                        "INSERT INTO schedule_firings (schedule, scheduled_at, outcome, \
                         campaign_id, message, recorded_at) VALUES ($1,$2,$3,$4,$5,$6) \
                         ON CONFLICT (schedule, scheduled_at) DO NOTHING",
                    )
                    .bind(claim.schedule)
                    .bind(*scheduled_at)
                    .bind(FiringOutcome::Missed.as_str())
                    .bind(Option::<&str>::None)
                    .bind(message)
                    .bind(claim.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(&ctx))?;
                }
                tx.commit().await.map_err(Error::storage(&ctx))?;
                Ok(ClaimOutcome::Claimed)
            }

            async fn firings(&self, schedule: &str, limit: u32) -> Result<Vec<FiringRecord>, Error> {
                sqlx::query::<$db>(
                    "SELECT * FROM schedule_firings WHERE schedule = $1 \
                     ORDER BY scheduled_at DESC LIMIT $2",
                )
                .bind(schedule)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map(|rows| Self::decoded(&rows, "schedule_firings", "schedule", Self::firing_from))
                .map_err(Error::storage(format!("listing firings of schedule '{schedule}'")))
            }

            async fn missed_firings(&self, schedule: &str) -> Result<u64, Error> {
                let n: i64 = sqlx::query_scalar::<$db, i64>(
                    "SELECT COUNT(*) FROM schedule_firings WHERE schedule = $1 AND outcome = 'missed'",
                )
                .bind(schedule)
                .fetch_one(&self.pool)
                .await
                .map_err(Error::storage(format!("counting missed firings of schedule '{schedule}'")))?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
            async fn fleet_rows(&self, q: &FleetQuery) -> Result<FleetRows, Error> {
                let ctx = "reading fleet rows";
                let (filter, params) = fleet_filter(q);
                let want = Sections {
                    flags: q.figure_flags,
                    points: q.roofline_points,
                };
                let sql = format!(
                    "SELECT {FLEET_RUN_COLS}{}{} FROM fleet_runs r {filter} \
                     ORDER BY r.started_at, r.run_id",
                    if want.flags { FLEET_FLAGS_COL } else { "" },
                    if want.points { FLEET_POINTS_COL } else { "" },
                );
                let started = std::time::Instant::now();
                let rows = self.fleet_row_cells(&sql, &params).await.map_err(Error::storage(ctx))?;
                let fetched = started.elapsed();
                let count = rows.len();
                // Unpacking the summaries is CPU work (~20 µs a run; a month of 1,000 boards
                // is 31,000 runs): over the cores, off the async threads.
                let decoded = tokio::task::spawn_blocking(move || {
                    super::fleet_row::decode_fleet_rows(rows, want)
                })
                .await
                .map_err(|e| Error::storage(ctx)(sqlx::Error::Protocol(e.to_string())))?
                .into_iter();
                tracing::debug!(
                    runs = count,
                    fetch_ms = fetched.as_millis(),
                    unpack_ms = (started.elapsed() - fetched).as_millis(),
                    "fleet rows read"
                );
                let mut runs = Vec::new();
                let mut headline = Vec::new();
                for (run, figures) in decoded {
                    runs.push(run);
                    headline.extend(figures);
                }
                if q.runs_only {
                    return Ok(FleetRows { runs, figures: Vec::new() });
                }
                if q.headline_figures_only {
                    return Ok(FleetRows { runs, figures: headline });
                }
                // Every figure: from the documents.
                let ids: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
                let figures = self.fleet_figures(&ids).await?;
                Ok(FleetRows { runs, figures })
            }

            async fn run_counts(&self) -> Result<RunCounts, Error> {
                let rows = sqlx::query::<$db>("SELECT state, COUNT(*) AS n FROM runs GROUP BY state")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(Error::storage("counting runs by state"))?;
                let mut pairs = Vec::with_capacity(rows.len());
                for row in &rows {
                    let decoded = row.try_get::<String, _>("state").and_then(|state| {
                        let n: i64 = row.try_get("n")?;
                        let state: RunState = state.parse().map_err(|e| corrupt("state", e))?;
                        Ok((state, u32::try_from(n).unwrap_or(u32::MAX)))
                    });
                    match decoded {
                        Ok(pair) => pairs.push(pair),
                        Err(e) => skipped("runs", "(a state count)", &e),
                    }
                }
                Ok(counts_from(pairs))
            }

            async fn insert_alert(&self, a: &AlertRecord) -> Result<bool, Error> {
                // The partial unique index on live alerts makes a second live one a conflict.
                let done = sqlx::query::<$db>(
                    "INSERT INTO alerts (id, agent_id, hostname, group_key, framework, figure, \
                     baseline, current_value, change_pct, kind, began_at, run_id, \
                     confirm_campaign_id, state, created_at, updated_at, message) VALUES \
                     ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&a.id)
                .bind(&a.agent_id)
                .bind(&a.hostname)
                .bind(&a.group_key)
                .bind(&a.framework)
                .bind(&a.figure)
                .bind(a.baseline)
                .bind(a.current)
                .bind(a.change_pct)
                .bind(&a.kind)
                .bind(a.began_at)
                .bind(&a.run_id)
                .bind(&a.confirm_campaign_id)
                .bind(a.state.as_str())
                .bind(a.created_at)
                .bind(a.updated_at)
                .bind(&a.message)
                .execute(&self.pool)
                .await
                .map_err(Error::storage(format!(
                    "recording alert {}",
                    fleetcal_proto::quote::quoted(&a.id)
                )))?;
                Ok(done.rows_affected() == 1)
            }

            async fn alert(&self, id: &str) -> Result<Option<AlertRecord>, Error> {
                sqlx::query::<$db>(&format!("SELECT {ALERT_COLS} FROM alerts a WHERE a.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .and_then(|r| r.as_ref().map(Self::alert_from).transpose())
                    .map_err(Error::storage(format!(
                        "reading alert {}",
                        fleetcal_proto::quote::quoted(id)
                    )))
            }

            async fn alerts(&self, states: &[AlertState]) -> Result<Vec<AlertRecord>, Error> {
                let filter = if states.is_empty() {
                    String::new()
                } else {
                    format!("WHERE a.state IN ({})", placeholders(1, states.len()))
                };
                let sql = format!(
                    "SELECT {ALERT_COLS} FROM alerts a {filter} ORDER BY a.created_at DESC, a.id DESC"
                );
                let mut query = sqlx::query::<$db>(&sql);
                for s in states {
                    query = query.bind(s.as_str());
                }
                query
                    .fetch_all(&self.pool)
                    .await
                    .map(|rows| Self::decoded(&rows, "alerts", "id", Self::alert_from))
                    .map_err(Error::storage("listing alerts"))
            }

            async fn agent_alerts(&self, agent_id: &str) -> Result<Vec<AlertRecord>, Error> {
                let sql = format!(
                    "SELECT {ALERT_COLS} FROM alerts a WHERE a.agent_id = $1 \
                     ORDER BY a.created_at DESC, a.id DESC"
                );
                sqlx::query::<$db>(&sql)
                    .bind(agent_id)
                    .fetch_all(&self.pool)
                    .await
                    .map(|rows| Self::decoded(&rows, "alerts", "id", Self::alert_from))
                    .map_err(Error::storage(format!("listing the alerts of agent '{agent_id}'")))
            }

            async fn update_alert(
                &self,
                id: &str,
                from: &[AlertState],
                u: &AlertUpdate,
            ) -> Result<bool, Error> {
                if from.is_empty() {
                    return Ok(false);
                }
                let sql = format!(
                    "UPDATE alerts SET state = $1, current_value = COALESCE($2, current_value), \
                     change_pct = COALESCE($3, change_pct), \
                     confirm_campaign_id = COALESCE($4, confirm_campaign_id), message = $5, \
                     updated_at = $6 WHERE id = $7 AND state IN ({})",
                    placeholders(8, from.len())
                );
                let mut query = sqlx::query::<$db>(&sql)
                    .bind(u.state.as_str())
                    .bind(u.current)
                    .bind(u.change_pct)
                    .bind(&u.confirm_campaign_id)
                    .bind(&u.message)
                    .bind(u.at)
                    .bind(id);
                for s in from {
                    query = query.bind(s.as_str());
                }
                let done = query
                    .execute(&self.pool)
                    .await
                    .map_err(Error::storage(format!(
                        "updating alert {}",
                        fleetcal_proto::quote::quoted(id)
                    )))?;
                Ok(done.rows_affected() == 1)
            }

            async fn start_run(&self, t: &Transition, lease: &RunLease) -> Result<bool, Error> {
                let done = sqlx::query::<$db>(
                    "UPDATE runs SET state = 'running', started_at = $1, \
                     message = COALESCE($2, message), lease_owner = $3, lease_expires = $4 \
                     WHERE run_id = $5 AND state = 'queued'",
                )
                .bind(t.at)
                .bind(&t.message)
                .bind(&lease.owner)
                .bind(lease.expires)
                .bind(&t.run_id)
                .execute(&self.pool)
                .await
                .map_err(Error::storage(format!("starting run '{}'", t.run_id)))?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_runs(
                &self,
                run_ids: &[String],
                owner: &str,
                now: i64,
                expires: i64,
            ) -> Result<Vec<String>, Error> {
                let mut claimed = Vec::new();
                // Bounded statements: well under either backend's parameter limit.
                for chunk in run_ids.chunks(500) {
                    let sql = format!(
                        "UPDATE runs SET lease_owner = $1, lease_expires = $2 \
                         WHERE state = 'running' AND (lease_owner IS NULL OR lease_owner = $3 \
                         OR lease_expires IS NULL OR lease_expires <= $4) \
                         AND run_id IN ({}) RETURNING run_id",
                        placeholders(5, chunk.len())
                    );
                    let mut query = sqlx::query::<$db>(&sql)
                        .bind(owner)
                        .bind(expires)
                        .bind(owner)
                        .bind(now);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    let rows = query
                        .fetch_all(&self.pool)
                        .await
                        .map_err(Error::storage("claiming run leases"))?;
                    for row in &rows {
                        claimed.push(
                            row.try_get::<String, _>("run_id")
                                .map_err(Error::storage("claiming run leases"))?,
                        );
                    }
                }
                Ok(claimed)
            }

            async fn run_leases(
                &self,
            ) -> Result<std::collections::HashMap<String, RunLease>, Error> {
                let rows = sqlx::query::<$db>(
                    "SELECT run_id, lease_owner, lease_expires FROM runs \
                     WHERE state = 'running' AND lease_owner IS NOT NULL \
                     AND lease_expires IS NOT NULL",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage("reading run leases"))?;
                let mut leases = std::collections::HashMap::new();
                for row in &rows {
                    let lease = (|| -> Result<(String, RunLease), sqlx::Error> {
                        Ok((
                            row.try_get("run_id")?,
                            RunLease {
                                owner: row.try_get("lease_owner")?,
                                expires: row.try_get("lease_expires")?,
                            },
                        ))
                    })()
                    .map_err(Error::storage("reading run leases"))?;
                    leases.insert(lease.0, lease.1);
                }
                Ok(leases)
            }

            async fn streaming_since(
                &self,
                since: i64,
            ) -> Result<std::collections::HashSet<String>, Error> {
                let rows = sqlx::query::<$db>(
                    "SELECT agent_id FROM agents WHERE stream_seen >= $1 AND removed_at IS NULL",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage("reading agents heard from"))?;
                rows.iter()
                    .map(|row| row.try_get::<String, _>("agent_id"))
                    .collect::<Result<_, _>>()
                    .map_err(Error::storage("reading agents heard from"))
            }

            async fn create_join_token(&self, t: &super::JoinToken) -> Result<(), Error> {
                let labels = serde_json::to_string(&t.labels)
                    .map_err(|e| Error::storage("encoding join token labels")(corrupt("labels", e)))?;
                sqlx::query::<$db>(
                    "INSERT INTO join_tokens (token_hash, labels, uses_left, expires_at, \
                     created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&t.token_hash)
                .bind(labels)
                .bind(i64::from(t.uses_left))
                .bind(t.expires_at)
                .bind(t.created_at)
                .execute(&self.pool)
                .await
                .map_err(Error::storage("storing a join token"))?;
                Ok(())
            }

            async fn redeem_join_token(
                &self,
                token_hash: &str,
                now: crate::model::Millis,
            ) -> Result<super::Redeemed, Error> {
                let ctx = "redeeming a join token";
                // One statement: the use is taken only while one is left and the token lives.
                let taken = sqlx::query::<$db>(
                    "UPDATE join_tokens SET uses_left = uses_left - 1 WHERE token_hash = $1 \
                     AND uses_left > 0 AND expires_at > $2 RETURNING labels",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage(ctx))?;
                if let Some(row) = taken {
                    let labels: String = row.try_get("labels").map_err(Error::storage(ctx))?;
                    let labels = serde_json::from_str(&labels)
                        .map_err(|e| Error::storage(ctx)(corrupt("labels", e)))?;
                    return Ok(super::Redeemed::Accepted(labels));
                }
                let row = sqlx::query::<$db>(
                    "SELECT uses_left, expires_at FROM join_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage(ctx))?;
                let Some(row) = row else {
                    return Ok(super::Redeemed::Unknown);
                };
                let expires_at: i64 = row.try_get("expires_at").map_err(Error::storage(ctx))?;
                Ok(if expires_at <= now {
                    super::Redeemed::Expired
                } else {
                    super::Redeemed::UsedUp
                })
            }

            async fn revoke_agent(&self, agent_id: &str, at: crate::model::Millis) -> Result<(), Error> {
                sqlx::query::<$db>(
                    "INSERT INTO revoked_agents (agent_id, revoked_at) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(agent_id)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(Error::storage("revoking an agent"))?;
                Ok(())
            }

            async fn revoked_agents(&self) -> Result<Vec<String>, Error> {
                sqlx::query_scalar::<$db, String>(
                    "SELECT agent_id FROM revoked_agents ORDER BY agent_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage("reading revoked agents"))
            }

            async fn quarantine_agent(
                &self,
                agent_id: &str,
                reason: &str,
                at: crate::model::Millis,
            ) -> Result<(), Error> {
                sqlx::query::<$db>(
                    "INSERT INTO quarantined_agents (agent_id, reason, quarantined_at) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(agent_id)
                .bind(reason)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(Error::storage("quarantining an agent"))?;
                Ok(())
            }

            async fn release_agent(&self, agent_id: &str) -> Result<bool, Error> {
                let done = sqlx::query::<$db>("DELETE FROM quarantined_agents WHERE agent_id = $1")
                    .bind(agent_id)
                    .execute(&self.pool)
                    .await
                    .map_err(Error::storage("releasing an agent"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn quarantined_agents(&self) -> Result<Vec<(String, String)>, Error> {
                sqlx::query_as::<$db, (String, String)>(
                    "SELECT agent_id, reason FROM quarantined_agents ORDER BY agent_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage("reading quarantined agents"))
            }

            async fn record_certificate(
                &self,
                agent_id: &str,
                not_after: crate::model::Millis,
                seen_at: crate::model::Millis,
            ) -> Result<(), Error> {
                sqlx::query::<$db>(
                    "INSERT INTO agent_certificates (agent_id, not_after, seen_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (agent_id) DO UPDATE SET \
                     not_after = excluded.not_after, seen_at = excluded.seen_at",
                )
                .bind(agent_id)
                .bind(not_after)
                .bind(seen_at)
                .execute(&self.pool)
                .await
                .map_err(Error::storage("recording an agent certificate"))?;
                Ok(())
            }

            async fn certificate_expiries(
                &self,
                first: &str,
                last: &str,
            ) -> Result<Vec<(String, crate::model::Millis)>, Error> {
                sqlx::query_as::<$db, (String, i64)>(
                    "SELECT agent_id, not_after FROM agent_certificates \
                     WHERE agent_id >= $1 AND agent_id <= $2 ORDER BY agent_id",
                )
                .bind(first)
                .bind(last)
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage("reading agent certificate expiries"))
            }

            async fn request_enrollment(
                &self,
                r: &super::EnrollmentRequest,
                max_pending: u32,
            ) -> Result<Option<super::EnrollmentRequest>, Error> {
                // One statement: filed only while fewer than max_pending wait (two requests
                // racing for the last place may both get in: the bound is kept within one).
                sqlx::query::<$db>(
                    "INSERT INTO enrollment_requests (agent_id, hostname, key_fingerprint, \
                     state, requested_at) SELECT $1, $2, $3, $4, $5 \
                     WHERE (SELECT COUNT(*) FROM enrollment_requests WHERE state = $6) < $7 \
                     ON CONFLICT (agent_id) DO NOTHING",
                )
                .bind(&r.agent_id)
                .bind(&r.hostname)
                .bind(&r.key_fingerprint)
                .bind(r.state.as_str())
                .bind(r.requested_at)
                .bind(super::EnrollmentState::Pending.as_str())
                .bind(i64::from(max_pending))
                .execute(&self.pool)
                .await
                .map_err(Error::storage("filing an enrollment request"))?;
                self.enrollment_request(&r.agent_id).await
            }

            async fn enrollment_request(
                &self,
                agent_id: &str,
            ) -> Result<Option<super::EnrollmentRequest>, Error> {
                let ctx = "reading an enrollment request";
                let row = sqlx::query::<$db>(
                    "SELECT agent_id, hostname, key_fingerprint, state, requested_at, \
                     decided_at FROM enrollment_requests WHERE agent_id = $1",
                )
                .bind(agent_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage(ctx))?;
                row.map(|row| enrollment_row(&row).map_err(Error::storage(ctx)))
                    .transpose()
            }

            async fn decide_enrollment(
                &self,
                agent_id: &str,
                state: super::EnrollmentState,
                at: crate::model::Millis,
            ) -> Result<Option<super::EnrollmentRequest>, Error> {
                sqlx::query::<$db>(
                    "UPDATE enrollment_requests SET state = $1, decided_at = $2 \
                     WHERE agent_id = $3 AND state = $4",
                )
                .bind(state.as_str())
                .bind(at)
                .bind(agent_id)
                .bind(super::EnrollmentState::Pending.as_str())
                .execute(&self.pool)
                .await
                .map_err(Error::storage("deciding an enrollment request"))?;
                self.enrollment_request(agent_id).await
            }

            async fn pending_enrollments(&self) -> Result<Vec<super::EnrollmentRequest>, Error> {
                let ctx = "reading pending enrollment requests";
                let rows = sqlx::query::<$db>(
                    "SELECT agent_id, hostname, key_fingerprint, state, requested_at, \
                     decided_at FROM enrollment_requests WHERE state = $1 ORDER BY agent_id",
                )
                .bind(super::EnrollmentState::Pending.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage(ctx))?;
                rows.iter()
                    .map(|row| enrollment_row(row).map_err(Error::storage(ctx)))
                    .collect()
            }
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
                    corrupt("state", format!("'{}' is not an enrollment state", fleetcal_proto::quote::bounded(&state)))
                })?,
                requested_at: row.try_get("requested_at")?,
                decided_at: row.try_get("decided_at")?,
            })
        }
    };
}

pub(crate) use impl_store;
