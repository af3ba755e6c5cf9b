//! Start-up backfills: fleet rows and packed summaries for results stored by older versions.

/// Expands, inside `impl_store!`'s inherent impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_backfill {
    ($store:ty, $db:ty) => {
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
                    let text = document(row.try_get("result_json")?, row.try_get("result_zstd")?)?;
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
                    Self::insert_fleet(&mut *tx, &[(&fleet, &packed)])
                        .await
                        .map_err(Error::storage(ctx))?;
                    tx.commit().await.map_err(Error::storage(ctx))?;
                }
            }
            self.backfill_summaries().await
        }

        /// Fills in the packed values of every fleet row written before schema v14 (its
        /// pair rates; before v13, its flags and points too), from its result document, a
        /// page of `fleet_rates_todo` at a time (logging progress on a large database).
        async fn backfill_summaries(&self) -> Result<(), Error> {
            let ctx = "making the run summaries of schema v14";
            let sql = format!(
                "SELECT {RUN_COLS}, res.result_json, res.result_zstd FROM fleet_rates_todo t \
                 JOIN results res ON res.run_id = t.run_id JOIN runs r ON r.run_id = t.run_id \
                 WHERE t.run_id > $1 ORDER BY t.run_id LIMIT 256"
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
                    sqlx::query::<$db>(
                        "INSERT INTO fleet_rates (run_id, rates) VALUES ($1, $2) \
                         ON CONFLICT (run_id) DO UPDATE SET rates = excluded.rates",
                    )
                    .bind(&run_id)
                    .bind(&packed.rates)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage(ctx))?;
                    sqlx::query::<$db>("DELETE FROM fleet_rates_todo WHERE run_id = $1")
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
    };
}

pub(crate) use store_backfill;
