//! `Store` methods on campaigns, runs, their transitions and results.

/// Expands, inside `impl_store!`'s `Store` impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_campaigns {
    ($store:ty, $db:ty) => {
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
            result: Option<fleetcal_proto::CalibrationResult>,
            fleet: &FleetRun,
            at: i64,
        ) -> Result<StoreOutcome, Error> {
            let ctx = format!("storing the result of run '{}'", run.run_id);
            // Encoded here, on the caller's task: the writer only writes.
            let compressed =
                compress(result_json, result.as_ref()).map_err(Error::storage(&ctx))?;
            self.write_result(run, compressed, result, fleet, at, &ctx).await
        }

        async fn store_packed_result(
            &self,
            run: &RunRecord,
            packed: &[u8],
            result: fleetcal_proto::CalibrationResult,
            fleet: &FleetRun,
            at: i64,
        ) -> Result<StoreOutcome, Error> {
            let ctx = format!("storing the result of run '{}'", run.run_id);
            self.write_result(run, packed.to_vec(), Some(result), fleet, at, &ctx)
                .await
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
    };
}

pub(crate) use store_campaigns;
