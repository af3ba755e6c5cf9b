//! Durable state behind the [`Store`] trait, with a SQLite and a PostgreSQL backend.

mod api;
mod codec;
mod columns;
mod fleet_row;
mod packed;
mod postgres;
mod sql;
mod sqlite;
mod sqlite_scan;
mod url;

pub use api::{AlertUpdate, CampaignKey, Claim, ClaimOutcome, Page, RemoveOutcome, RunKey, Store};
pub use api::{EnrollmentRequest, EnrollmentState, JoinToken, Redeemed};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use url::{redact, DbUrl};
