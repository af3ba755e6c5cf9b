//! `Store` methods on run leases (which coordinator instance drives which run) and directive
//! streams.

/// Expands, inside `impl_store!`'s `Store` impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_leases {
    ($store:ty, $db:ty) => {
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

        async fn run_leases(&self) -> Result<std::collections::HashMap<String, RunLease>, Error> {
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
    };
}

pub(crate) use store_leases;
