//! The results writer: labels, fleet rows, and the group-commit task that stores many uploads per
//! transaction, each under its own savepoint.

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
        /// fleet row and packed summary, and waits for its commit.
        async fn write_result(
            &self,
            run: &RunRecord,
            compressed: Vec<u8>,
            result: Option<&fleetcal_proto::CalibrationResult>,
            fleet: &FleetRun,
            at: i64,
            ctx: &str,
        ) -> Result<StoreOutcome, Error> {
            let figures = result
                .map(|r| FleetFigure::from_result(&run.run_id, r))
                .unwrap_or_default();
            let packed = packed_run(fleet, &figures).map_err(Error::storage(ctx))?;
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

        /// Inserts a result's `fleet_runs` row with its packed summary
        /// ([`summary_of`]) and its `fleet_rates` row, within a transaction.
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
            sqlx::query::<$db>("INSERT INTO fleet_rates (run_id, rates) VALUES ($1, $2)")
                .bind(&f.run_id)
                .bind(&packed.rates)
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
    };
}

pub(crate) use store_writer;
