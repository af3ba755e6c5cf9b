//! `Store` methods on agents: register, contact, list, page, remove.

/// Expands, inside `impl_store!`'s `Store` impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_agents {
    ($store:ty, $db:ty) => {
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
    };
}

pub(crate) use store_agents;
