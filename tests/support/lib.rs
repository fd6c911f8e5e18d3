//! Shared support for the end-to-end tests: a real Reprieve server on `127.0.0.1:0` (with or without a real
//! feedback store on disk), the bundled model, paths, and a test certificate authority ([`pki`]).

pub mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reprieve_model::Model;
use reprieve_server::{AppState, ServerConfig, ServerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, ClientTlsConfig};

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
    /// Where `/metrics` is served, when the config set `metrics_listen` (the test binds 127.0.0.1:0 instead).
    pub metrics_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServerError>>,
    metrics: Option<Stoppable>,
}

/// A background listener and what stops it.
type Stoppable = (oneshot::Sender<()>, JoinHandle<Result<(), ServerError>>);

impl TestServer {
    /// Starts a server without a feedback store with `config` (its `listen` and `metrics_listen` addresses are
    /// ignored: both bind 127.0.0.1:0, metrics only when `metrics_listen` is set) serving `model`, or no model at
    /// all.
    pub async fn start(config: ServerConfig, model: Option<Model>) -> Self {
        Self::launch(AppState::new(config), model).await
    }

    /// As [`TestServer::start`], with the feedback store in `config.store.data_dir` (a real sled directory;
    /// starting again on the same directory after [`TestServer::stop`] is a restart).
    pub async fn start_with_store(config: ServerConfig, model: Option<Model>) -> Self {
        let state = AppState::open(config).unwrap_or_else(|e| panic!("the feedback store must open: {e}"));
        Self::launch(state, model).await
    }

    async fn launch(state: AppState, model: Option<Model>) -> Self {
        let state = Arc::new(state);
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
        let (metrics_addr, metrics) = if state.config.metrics_listen.is_some() {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0 for metrics");
            let metrics_addr = listener.local_addr().expect("metrics local addr");
            let (tx, rx) = oneshot::channel::<()>();
            let handle = tokio::spawn(reprieve_server::serve_metrics(listener, state.clone(), async move {
                let _ = rx.await;
            }));
            (Some(metrics_addr), Some((tx, handle)))
        } else {
            (None, None)
        };
        Self {
            addr,
            metrics_addr,
            state,
            shutdown: Some(tx),
            handle,
            metrics,
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

    /// A channel over TLS (`https://`, with `tls` saying which CA to trust, the name to expect and the client's
    /// own certificate, if any). A server that refuses the client may do so here or on the first call.
    pub async fn tls_channel(&self, tls: ClientTlsConfig) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(format!("https://{}", self.addr))
            .expect("endpoint")
            .tls_config(tls)?
            .connect()
            .await
    }

    /// Stops the server gracefully and returns what `serve` returned. The feedback store, if any, is closed and
    /// released (its directory can be opened again) when this returns.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((tx, handle)) = self.metrics.take() {
            let _ = tx.send(());
            handle.await.expect("metrics task")?;
        }
        let served = self.handle.await.expect("server task");
        // Tasks that outlive `serve` by a moment (a finished stream's sender) still hold the state: wait for them,
        // so that dropping it here releases the store.
        for _ in 0..500 {
            if Arc::strong_count(&self.state) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        served
    }
}

/// A plain HTTP/1.1 GET (no client library needed): the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (labels as rendered, in order) in a Prometheus text exposition.
pub fn metric_sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Asserts that a refused call (`case` names it) got `code` and a message naming `needle` (a field, a limit).
#[track_caller]
pub fn assert_status(case: &str, status: &tonic::Status, code: tonic::Code, needle: &str) {
    assert_eq!(status.code(), code, "{case}: {status:?}");
    assert!(
        status.message().contains(needle),
        "{case}: {:?} should name {needle:?}",
        status.message()
    );
}
