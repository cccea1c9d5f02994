//! What every handler shares: the dispatcher client, the configuration, the live-event hub, what
//! is followed on NATS (sweep rounds), the cap on event streams and the shutdown token.

use std::sync::Arc;

use podperf_client::Client;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::WebConfig;
use crate::hub::Hub;
use crate::metrics::Watch;

/// Cheap to clone (everything is shared).
#[derive(Clone)]
pub struct AppState {
    pub client: Client,
    pub config: Arc<WebConfig>,
    pub hub: Hub,
    /// The sweep rounds, bandwidth and series seen on NATS (`GET /api/v2/health`, `/metrics`).
    pub watch: Watch,
    /// One permit per open event stream.
    pub streams: Arc<Semaphore>,
    /// Cancelled when the server shuts down: event streams and `?wait=` requests end on it.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(
        client: Client,
        config: WebConfig,
        watch: Watch,
        shutdown: CancellationToken,
    ) -> Self {
        let hub = Hub::start(
            client.clone(),
            config.poll_interval,
            &watch,
            shutdown.clone(),
        );
        AppState {
            streams: Arc::new(Semaphore::new(config.max_event_streams)),
            client,
            config: Arc::new(config),
            hub,
            watch,
            shutdown,
        }
    }
}
