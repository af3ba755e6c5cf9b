//! `Store` methods on trust: join tokens, revocation, quarantine, certificates, enrollment.

/// Expands, inside `impl_store!`'s `Store` impl of a backend, this file's methods (see
/// [`impl_store!`](super::impl_store)).
macro_rules! store_trust {
    ($store:ty, $db:ty) => {
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

        async fn revoke_agent(
            &self,
            agent_id: &str,
            at: crate::model::Millis,
        ) -> Result<(), Error> {
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
    };
}

pub(crate) use store_trust;
