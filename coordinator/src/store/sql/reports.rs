//! `Store` methods the reports read: fleet rows, run counts, alerts.

/// Expands, inside `impl_store!`'s `Store` impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_reports {
    ($store:ty, $db:ty) => {
        async fn fleet_rows(&self, q: &FleetQuery) -> Result<FleetRows, Error> {
            let ctx = "reading fleet rows";
            let (filter, params) = fleet_filter(q);
            // A pair's every measured record is its headline records, roofline points
            // and pair rates.
            let want = Sections {
                flags: q.figure_flags,
                points: q.roofline_points || q.pair_rates,
                rates: q.pair_rates,
            };
            let sql = format!(
                "SELECT {FLEET_RUN_COLS}{}{}{} FROM fleet_runs r{} {filter} \
                 ORDER BY r.started_at, r.run_id",
                if want.flags { FLEET_FLAGS_COL } else { "" },
                if want.points { FLEET_POINTS_COL } else { "" },
                if want.rates { FLEET_RATES_COL } else { "" },
                if want.rates { FLEET_RATES_JOIN } else { "" },
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

        async fn fleet_run_count(&self, q: &FleetQuery) -> Result<u64, Error> {
            let (filter, params) = fleet_filter(q);
            let sql = format!("SELECT COUNT(*) AS n FROM fleet_runs r {filter}");
            let mut query = sqlx::query::<$db>(&sql);
            for p in params {
                query = match p {
                    Param::Text(t) => query.bind(t),
                    Param::Int(i) => query.bind(i),
                };
            }
            let row = query
                .fetch_one(&self.pool)
                .await
                .map_err(Error::storage("counting fleet rows"))?;
            let n: i64 = row
                .try_get("n")
                .map_err(Error::storage("counting fleet rows"))?;
            Ok(u64::try_from(n).unwrap_or(0))
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
    };
}

pub(crate) use store_reports;
