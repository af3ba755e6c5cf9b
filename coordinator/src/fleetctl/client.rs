//! fleetctl's connection to the coordinator.

use fleetcal_proto::pb;
use fleetcal_proto::pb::admin_service_client::AdminServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::Error;

/// The admin client fleetctl uses.
pub type Admin = AdminServiceClient<Channel>;

/// Connects to the coordinator at `url` (`http://HOST:PORT`).
pub async fn connect(url: &str) -> Result<Admin, Error> {
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| {
        Error::InvalidRequest(format!("coordinator url '{url}' is not a valid URL: {e}"))
    })?;
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|source| Error::Transport {
            target: url.to_string(),
            source,
        })?;
    Ok(AdminServiceClient::new(channel)
        .max_decoding_message_size(pb::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(pb::MAX_MESSAGE_BYTES))
}
