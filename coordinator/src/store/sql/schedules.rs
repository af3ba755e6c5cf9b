//! `Store` methods on schedules and their firings.

/// Expands, inside `impl_store!`'s `Store` impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_schedules {
    ($store:ty, $db:ty) => {
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
            .map_err(Error::storage(format!(
                "pausing or resuming schedule '{name}'"
            )))?;
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
                let scheduled_at = campaign
                    .firing
                    .as_ref()
                    .map_or(claim.at, |f| f.scheduled_at);
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
            .map_err(Error::storage(format!(
                "listing firings of schedule '{schedule}'"
            )))
        }

        async fn missed_firings(&self, schedule: &str) -> Result<u64, Error> {
            let n: i64 = sqlx::query_scalar::<$db, i64>(
                "SELECT COUNT(*) FROM schedule_firings WHERE schedule = $1 AND outcome = 'missed'",
            )
            .bind(schedule)
            .fetch_one(&self.pool)
            .await
            .map_err(Error::storage(format!(
                "counting missed firings of schedule '{schedule}'"
            )))?;
            Ok(u64::try_from(n).unwrap_or(0))
        }
    };
}

pub(crate) use store_schedules;
