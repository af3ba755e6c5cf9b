//! `fleetctl report`: TEMP.

use super::cli::ReportArgs;
use super::client::Admin;
use crate::Error;

/// TEMP.
pub async fn run(_admin: &mut Admin, _a: ReportArgs) -> Result<(), Error> {
    Ok(())
}
