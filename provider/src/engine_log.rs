//! Messages to the user through the engine's Log service: warnings and
//! errors tied to a resource, and ephemeral status lines while waiting.
//!
//! Callers pass names, ARNs and AWS error text, never input values, so that
//! no secret reaches the engine's display or its logs.

use std::sync::RwLock;

use tonic::transport::Channel;

use crate::proto::pulumirpc::{engine_client::EngineClient, LogRequest, LogSeverity};

#[derive(Default)]
pub struct EngineLog {
    client: RwLock<Option<EngineClient<Channel>>>,
}

impl EngineLog {
    /// Connects lazily to the engine at `address` (host:port).
    pub fn connect(&self, address: &str) -> Result<(), String> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|err| format!("invalid engine address `{address}`: {err}"))?;
        let client = EngineClient::new(endpoint.connect_lazy());
        match self.client.write() {
            Ok(mut slot) => *slot = Some(client),
            Err(poisoned) => *poisoned.into_inner() = Some(client),
        }
        Ok(())
    }

    fn client(&self) -> Option<EngineClient<Channel>> {
        match self.client.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A transient status line for a resource that is waiting on AWS.
    pub fn status(&self, urn: &str, message: &str) {
        tracing::info!(urn, "{message}");
        self.send(LogSeverity::Info, urn, message, true);
    }

    pub fn info(&self, urn: &str, message: &str) {
        tracing::info!(urn, "{message}");
        self.send(LogSeverity::Info, urn, message, false);
    }

    pub fn warn(&self, urn: &str, message: &str) {
        tracing::warn!(urn, "{message}");
        self.send(LogSeverity::Warning, urn, message, false);
    }

    fn send(&self, severity: LogSeverity, urn: &str, message: &str, ephemeral: bool) {
        let Some(mut client) = self.client() else {
            return;
        };
        let request = LogRequest {
            severity: severity as i32,
            message: message.to_string(),
            urn: urn.to_string(),
            ephemeral,
            ..Default::default()
        };
        // Logging must never hold up or fail a resource operation.
        tokio::spawn(async move {
            if let Err(err) = client.log(request).await {
                tracing::debug!("engine log call failed: {err}");
            }
        });
    }
}
