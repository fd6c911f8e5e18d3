//! Shared support for the end-to-end tests: a real Reprieve server on `127.0.0.1:0`, the bundled model, paths.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reprieve_model::Model;
use reprieve_server::{AppState, ServerConfig, ServerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The repository root (where `models/` and `proto/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled default model, as committed in `models/default.json`.
pub fn default_model() -> Model {
    let path = repo_root().join("models/default.json");
    Model::load(&path).unwrap_or_else(|e| panic!("the bundled model must load: {e}"))
}

/// A real server on an ephemeral loopback port, stopped gracefully by [`TestServer::stop`].
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    /// Starts a server with `config` (its `listen` is ignored) serving `model`, or no model at all.
    pub async fn start(config: ServerConfig, model: Option<Model>) -> Self {
        let state = Arc::new(AppState::new(config));
        if let Some(model) = model {
            state.install(model, "test".into());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(reprieve_server::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            state,
            shutdown: Some(tx),
            handle,
        }
    }

    /// A connected client channel.
    pub async fn channel(&self) -> Channel {
        let endpoint = format!("http://{}", self.addr);
        for _ in 0..50 {
            if let Ok(channel) = Channel::from_shared(endpoint.clone())
                .expect("endpoint")
                .connect()
                .await
            {
                return channel;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server at {endpoint} did not accept connections");
    }

    /// Stops the server gracefully and returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.await.expect("server task")
    }
}
