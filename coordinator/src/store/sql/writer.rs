//! The results writer: labels, fleet rows, and the group-commit task that stores many uploads per
//! transaction, set-wise (a few statements a batch) or, should that fail, each under its own
//! savepoint.

/// Expands, inside `impl_store!`'s inherent impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_writer {
    ($store:ty, $db:ty) => {
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

        /// Hands a result in its stored form to the writer ([`Self::start_writer`]) with its
        /// fleet row and packed summary, and waits for its commit. The parsed `result` and
        /// its figures are freed before the wait.
        async fn write_result(
            &self,
            run: &RunRecord,
            compressed: Vec<u8>,
            result: Option<fleetcal_proto::CalibrationResult>,
            fleet: &FleetRun,
            at: i64,
            ctx: &str,
        ) -> Result<StoreOutcome, Error> {
            let packed = {
                let figures = result
                    .map(|r| FleetFigure::from_result(&run.run_id, &r))
                    .unwrap_or_default();
                packed_run(fleet, &figures).map_err(Error::storage(ctx))?
            };
            let (reply, answer) = tokio::sync::oneshot::channel();
            let pending = PendingResult {
                run: run.clone(),
                compressed,
                fleet: fleet.clone(),
                packed,
                at,
                reply,
            };
            let gone = || Error::storage(ctx)(sqlx::Error::PoolClosed);
            self.writer.send(pending).await.map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        }

        /// Inserts the `fleet_runs` rows of `results` (each run's row and packed values,
        /// [`packed_run`]) and their `fleet_rates` rows, within a transaction: two
        /// statements however many results.
        async fn insert_fleet(
            conn: &mut <$db as sqlx::Database>::Connection,
            results: &[(&FleetRun, &PackedRun)],
        ) -> Result<(), sqlx::Error> {
            if results.is_empty() {
                return Ok(());
            }
            let mut runs = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO fleet_runs (run_id, campaign_id, schedule, agent_id, hostname, \
                 framework, device, fallback_from, preset_id, quick, started_at, stored_at, \
                 cpu_model, microarch, cores, logical_cpus, memory_gb, gpu_model, \
                 jetson_model, power_mode, blas, libtorch, tool_version, host_key, env_key, \
                 noise_floor_pct, bandwidth_gbps, bandwidth_efficiency, summary, flags, \
                 points) ",
            );
            runs.push_values(results, |mut b, (f, packed)| {
                b.push_bind(f.run_id.as_str())
                    .push_bind(f.campaign_id.as_str())
                    .push_bind(f.schedule.as_deref())
                    .push_bind(f.agent_id.as_str())
                    .push_bind(f.hostname.as_str())
                    .push_bind(f.framework.as_str())
                    .push_bind(f.device.as_str())
                    .push_bind(f.fallback_from.as_deref())
                    .push_bind(f.preset_id.as_str())
                    .push_bind(f.quick)
                    .push_bind(f.started_at)
                    .push_bind(f.stored_at)
                    .push_bind(f.facts.cpu_model.as_deref())
                    .push_bind(f.facts.microarch.as_deref())
                    .push_bind(f.facts.cores.map(i64::from))
                    .push_bind(f.facts.logical_cpus.map(i64::from))
                    .push_bind(f.facts.memory_gb.map(i64::from))
                    .push_bind(f.facts.gpu_model.as_deref())
                    .push_bind(f.facts.jetson_model.as_deref())
                    .push_bind(f.facts.power_mode.as_deref())
                    .push_bind(f.facts.blas.as_deref())
                    .push_bind(f.facts.libtorch.as_deref())
                    .push_bind(f.facts.tool_version.as_deref())
                    .push_bind(f.host_key.as_deref())
                    .push_bind(f.env_key.as_deref())
                    .push_bind(f.noise_floor_pct)
                    .push_bind(f.bandwidth_gbps)
                    .push_bind(f.bandwidth_efficiency)
                    .push_bind(packed.summary.as_slice())
                    .push_bind(packed.flags.as_slice())
                    .push_bind(packed.points.as_slice());
            });
            runs.build().execute(&mut *conn).await?;
            let mut rates =
                sqlx::QueryBuilder::<$db>::new("INSERT INTO fleet_rates (run_id, rates) ");
            rates.push_values(results, |mut b, (f, packed)| {
                b.push_bind(f.run_id.as_str())
                    .push_bind(packed.rates.as_slice());
            });
            rates.build().execute(&mut *conn).await?;
            Ok(())
        }

        /// Starts the group-commit writer of [`Store::store_result`] on `pool`: it
        /// takes every result waiting (up to [`WRITE_BATCH`]), writes them in one
        /// transaction ([`Self::write_batch`]), commits once and only then answers each
        /// caller.
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

        /// Writes a batch of results in one transaction (see [`Self::start_writer`]) and
        /// answers every caller. The batch goes in set-wise ([`Self::store_set`]: a few
        /// statements however many results); should one of those fail, it is rolled back
        /// and the batch goes again result by result, each under its own savepoint, so
        /// that a result failing alone does not fail the others. A duplicate or a run not
        /// running is refused alone either way; a failed commit fails every result that
        /// would have been stored.
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
                let outcomes = match Self::store_set(&mut *tx, &batch).await {
                    Ok(Some(outcomes)) => outcomes,
                    set => {
                        if let Err(e) = set {
                            tracing::debug!(
                                "storing {} results at once failed ({e}); storing them one \
                                 by one",
                                batch.len()
                            );
                            let _ = tx.rollback().await;
                            tx = match pool.begin().await {
                                Ok(tx) => tx,
                                Err(e) => return fail_results(batch, &e.to_string()),
                            };
                        }
                        let mut outcomes = Vec::with_capacity(batch.len());
                        for p in &batch {
                            match Self::under_savepoint(&mut *tx, p).await {
                                Ok(outcome) => outcomes.push(outcome),
                                Err(e) => {
                                    // The transaction is unusable: nothing of it is kept.
                                    let _ = tx.rollback().await;
                                    return fail_results(batch, &e.to_string());
                                }
                            }
                        }
                        outcomes
                    }
                };
                let committed = tx.commit().await;
                let mut failed = Vec::new();
                for (p, outcome) in batch.into_iter().zip(outcomes) {
                    match (&committed, outcome) {
                        (Err(_), Ok(StoreOutcome::Stored)) => failed.push(p),
                        (_, outcome) => {
                            let _ = p.reply.send(outcome);
                        }
                    }
                }
                if let Err(e) = committed {
                    fail_results(failed, &e.to_string());
                }
            }
        }

        /// Ends `q`'s open `IN (` list with `ids`, each a bound parameter.
        fn push_ids<'q>(
            q: &mut sqlx::QueryBuilder<'q, $db>,
            ids: impl IntoIterator<Item = &'q str>,
        ) {
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(id);
            }
            list.push_unseparated(")");
        }

        /// The run ids that `q` (a statement `... RETURNING run_id`) returns.
        async fn returned_ids(
            mut q: sqlx::QueryBuilder<'_, $db>,
            conn: &mut <$db as sqlx::Database>::Connection,
        ) -> Result<std::collections::HashSet<String>, sqlx::Error> {
            let ids = q.build_query_scalar::<String>().fetch_all(&mut *conn).await?;
            Ok(ids.into_iter().collect())
        }

        /// Stores a whole batch in a few statements however many results: every document
        /// in one insert (a run with a result already is a duplicate and gets nothing
        /// written), every one of their runs that is running marked succeeded in one
        /// update, the documents of the runs that were not running deleted again (refused),
        /// and the fleet rows of the rest in two inserts ([`Self::insert_fleet`]).
        /// Each caller's outcome in the batch's order; `None`, with nothing written, when a
        /// run is in the batch twice (the batch then goes result by result). After an error
        /// the transaction is to be rolled back.
        fn store_set<'a>(
            conn: &'a mut <$db as sqlx::Database>::Connection,
            batch: &'a [PendingResult],
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<Option<Vec<Result<StoreOutcome, Error>>>, sqlx::Error>,
                    > + Send
                    + 'a,
            >,
        > {
            // Boxed for the reason [`Self::under_savepoint`] is.
            Box::pin(async move {
                use std::collections::{HashMap, HashSet};
                let mut ids = HashSet::with_capacity(batch.len());
                if !batch.iter().all(|p| ids.insert(p.run.run_id.as_str())) {
                    return Ok(None);
                }
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO results (run_id, agent_id, stored_at, result_json, \
                     result_zstd) ",
                );
                insert.push_values(batch, |mut b, p| {
                    b.push_bind(p.run.run_id.as_str())
                        .push_bind(p.run.agent_id.as_str())
                        .push_bind(p.at)
                        .push_bind("")
                        .push_bind(p.compressed.as_slice());
                });
                insert.push(" ON CONFLICT (run_id) DO NOTHING RETURNING run_id");
                let inserted = Self::returned_ids(insert, &mut *conn).await?;
                let fresh: Vec<&PendingResult> = batch
                    .iter()
                    .filter(|p| inserted.contains(&p.run.run_id))
                    .collect();
                let mut accepted = HashSet::new();
                if !fresh.is_empty() {
                    let mut update = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE runs SET state = 'succeeded', fraction = 1.0, message = '', \
                         finished_at = CASE run_id",
                    );
                    for p in &fresh {
                        update.push(" WHEN ");
                        update.push_bind(p.run.run_id.as_str());
                        update.push(" THEN ");
                        update.push_bind(p.at);
                    }
                    update.push(" END WHERE state = 'running' AND run_id IN (");
                    Self::push_ids(&mut update, fresh.iter().map(|p| p.run.run_id.as_str()));
                    update.push(" RETURNING run_id");
                    accepted = Self::returned_ids(update, &mut *conn).await?;
                }
                let refused: Vec<&str> = fresh
                    .iter()
                    .map(|p| p.run.run_id.as_str())
                    .filter(|id| !accepted.contains(*id))
                    .collect();
                let mut states = HashMap::new();
                if !refused.is_empty() {
                    // Their documents were written above, in this transaction: deleting
                    // them leaves what was there before.
                    let mut delete =
                        sqlx::QueryBuilder::<$db>::new("DELETE FROM results WHERE run_id IN (");
                    Self::push_ids(&mut delete, refused.iter().copied());
                    delete.build().execute(&mut *conn).await?;
                    let mut read = sqlx::QueryBuilder::<$db>::new(
                        "SELECT run_id, state FROM runs WHERE run_id IN (",
                    );
                    Self::push_ids(&mut read, refused.iter().copied());
                    states = read
                        .build_query_as::<(String, String)>()
                        .fetch_all(&mut *conn)
                        .await?
                        .into_iter()
                        .collect::<HashMap<String, String>>();
                }
                let stored: Vec<(&FleetRun, &PackedRun)> = fresh
                    .into_iter()
                    .filter(|p| accepted.contains(&p.run.run_id))
                    .map(|p| (&p.fleet, &p.packed))
                    .collect();
                Self::insert_fleet(&mut *conn, &stored).await?;
                Ok(Some(
                    batch
                        .iter()
                        .map(|p| {
                            let id = &p.run.run_id;
                            if accepted.contains(id) {
                                Ok(StoreOutcome::Stored)
                            } else if inserted.contains(id) {
                                Err($crate::domain::DomainError::RunNotAccepting {
                                    run: id.clone(),
                                    state: states
                                        .get(id)
                                        .cloned()
                                        .unwrap_or_else(|| "removed".to_string()),
                                    what: "result",
                                }
                                .into())
                            } else {
                                Ok(StoreOutcome::Duplicate)
                            }
                        })
                        .collect(),
                ))
            })
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
            Self::insert_fleet(&mut *conn, &[(&p.fleet, &p.packed)])
                .await
                .map_err(Error::storage(&ctx))?;
            Ok(StoreOutcome::Stored)
        }
    };
}

pub(crate) use store_writer;
