//! Row decoding and campaign insertion shared by the queries: each table's row decoder, the skip-
//! and-log rule of listings, keyset pages.

/// Expands, inside `impl_store!`'s inherent impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_rows {
    ($store:ty, $db:ty) => {
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
    };
}

pub(crate) use store_rows;
