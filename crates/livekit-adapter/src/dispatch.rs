//! Agent dispatch (the STT and TTS bots) through LiveKit's AgentDispatchService.

use std::time::Duration;

use async_trait::async_trait;
use june_domain::ports::{AgentDispatcher, RoomError};
use livekit_api::services::agent_dispatch::AgentDispatchClient;
use livekit_protocol as proto;
use secrecy::{ExposeSecret, SecretString};

use crate::rooms::{map_service_error, observed};

/// [`AgentDispatcher`] on LiveKit's `AgentDispatchClient`.
pub struct LiveKitAgentDispatcher {
    client: AgentDispatchClient,
    api_url: String,
    timeout: Duration,
}

impl std::fmt::Debug for LiveKitAgentDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitAgentDispatcher")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl LiveKitAgentDispatcher {
    /// A dispatcher for the server at `api_url`.
    pub fn new(api_url: &str, api_key: &str, api_secret: &SecretString, timeout: Duration) -> Self {
        LiveKitAgentDispatcher {
            client: AgentDispatchClient::with_api_key(api_url, api_key, api_secret.expose_secret())
                .with_failover(false)
                .with_request_timeout(timeout),
            api_url: api_url.to_owned(),
            timeout,
        }
    }
}

#[async_trait]
impl AgentDispatcher for LiveKitAgentDispatcher {
    #[tracing::instrument(skip_all, fields(room = %room, agent = %agent_name))]
    async fn dispatch(
        &self,
        room: &str,
        agent_name: &str,
        metadata: &str,
    ) -> Result<String, RoomError> {
        observed("CreateDispatch", async {
            self.client
                .create_dispatch(proto::CreateAgentDispatchRequest {
                    agent_name: agent_name.to_owned(),
                    room: room.to_owned(),
                    metadata: metadata.to_owned(),
                    ..Default::default()
                })
                .await
                .map(|d| d.id)
                .map_err(|e| map_service_error(e, &self.api_url, self.timeout))
        })
        .await
    }
}
