//! Reprieve's gRPC server: `ReuseScorer`, `Feedback` and `Models` over tonic, with `grpc.health.v1` health,
//! server reflection (v1 and v1alpha, so `grpcurl` works without proto files) and graceful shutdown.
//!
//! ```no_run
//! # async fn run(model: reprieve_model::Model) -> Result<(), reprieve_server::ServerError> {
//! use std::sync::Arc;
//! // Opens (or creates) the feedback store in `config.store.data_dir` (default `./reprieve-data`).
//! let state = Arc::new(reprieve_server::AppState::open(reprieve_server::ServerConfig::default())?);
//! state.install(model, "bundled".into());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
//! reprieve_server::serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! - [`scorer`]: scoring, validation first, verdicts audited before they are returned; [`models`]: model info and
//!   hot reload (a new version is promoted in the feedback store).
//! - [`feedback`]: actions, restores, precision, the audit trail and the breaker over gRPC.
//! - [`store`]: the feedback store as the server runs it; [`writer`]: its group-commit writer thread.
//! - [`state`]: the active model, swapped atomically; [`config`]: layered configuration.
//! - [`error`]: the single mapping from refused requests to gRPC status codes.
//! - [`auth`]: the bearer-token guard admin calls opt into; [`deadline`]: client deadlines inside a batch;
//!   [`guard`]: `RESOURCE_EXHAUSTED` for oversize requests and `DEADLINE_EXCEEDED` for late unary calls, where
//!   tonic would answer otherwise.
//! - [`tls`]: TLS and mutual TLS for the gRPC listener (`[tls]`), checked before anything listens.
//! - [`telemetry`]: a span per call and Prometheus metrics ([`serve_metrics`] on their own listener, plain HTTP).

pub mod auth;
pub mod config;
pub mod deadline;
pub mod error;
pub mod feedback;
pub mod guard;
pub mod models;
pub mod scorer;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod writer;

use std::future::Future;
use std::sync::Arc;

use reprieve_proto::v1::feedback_server::FeedbackServer;
use reprieve_proto::v1::models_server::ModelsServer;
use reprieve_proto::v1::reuse_scorer_server::ReuseScorerServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::guard::Guarded;

pub use config::{AuditDurability, ServerConfig, StoreSettings, TlsSettings};
pub use error::ServerError;
pub use models::{ReloadOutcome, reload_configured};
/// The store crate, for callers that read a server's store ([`AppState::feedback`]).
pub use reprieve_store;
pub use state::AppState;
pub use telemetry::serve_metrics;

/// Serves every Reprieve service on `listener` until `shutdown` completes; in-flight calls are finished first,
/// then the feedback store is closed (queued writes committed and flushed, the session marked clean). With
/// `config.tls` set the listener speaks TLS (mutual TLS with a client CA); TLS settings that cannot be honoured
/// are an error before any connection is accepted, never a plaintext listener.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let max = state.config.max_message_bytes;
    let (mut builder, tls_mode) = match server_builder(&state.config) {
        Ok(built) => built,
        Err(e) => {
            // Nothing was served: release the store as a clean stop would.
            state.close().await;
            return Err(e);
        }
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING until a model is in service.
    if state.current().is_some() {
        health.set_serving::<ReuseScorerServer<scorer::ScorerService>>().await;
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
    } else {
        health
            .set_not_serving::<ReuseScorerServer<scorer::ScorerService>>()
            .await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(reprieve_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;

    let addr = listener.local_addr().ok();
    tracing::info!(
        ?addr,
        admin_auth = state.auth.is_enabled(),
        tls = tls_mode.as_str(),
        "reprieve gRPC server listening"
    );
    let upkeep = tokio::spawn(telemetry::upkeep(state.clone()));
    let maintenance = state.feedback().cloned().map(|f| tokio::spawn(store::maintain(f)));
    let served = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(Guarded::new(
            ReuseScorerServer::new(scorer::ScorerService::new(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
        .add_service(Guarded::new(
            ModelsServer::new(models::ModelsService::new(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
        .add_service(Guarded::new(
            FeedbackServer::new(feedback::FeedbackService::new(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await;
    upkeep.abort();
    if let Some(task) = maintenance {
        task.abort();
        let _ = task.await;
    }
    state.close().await;
    served?;
    tracing::info!("reprieve gRPC server stopped");
    Ok(())
}

/// A tonic server builder with the configured TLS, if any, and what the listener will speak.
fn server_builder(config: &ServerConfig) -> Result<(Server, tls::TlsMode), ServerError> {
    match tls::load(&config.tls)? {
        None => Ok((Server::builder(), tls::TlsMode::Plaintext)),
        Some(loaded) => Ok((Server::builder().tls_config(loaded.config)?, loaded.mode)),
    }
}

/// The accepted connections of `listener`, with Nagle's algorithm off: without it a small response waits for the
/// client's delayed ACK (about 40 ms on Linux), which dwarfs the time it takes to score.
fn incoming(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        Ok(stream)
    })
}

/// Binds `config.metrics_listen`, if set.
pub async fn bind_metrics(config: &ServerConfig) -> Result<Option<TcpListener>, ServerError> {
    let Some(addr) = config.metrics_listen else {
        return Ok(None);
    };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|e| ServerError::Bind { addr, source: e })
}

/// Reloads the configured model on every SIGHUP (see [`reload_configured`]). The handler is registered before
/// this returns, so a SIGHUP sent afterwards cannot kill the process; run the returned future to serve it.
#[cfg(unix)]
pub fn reload_on_sighup(state: Arc<AppState>) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(async move {
        while hangups.recv().await.is_some() {
            reload_configured(&state, "SIGHUP").await;
        }
    })
}

/// Binds the configured address.
pub async fn bind(config: &ServerConfig) -> Result<TcpListener, ServerError> {
    TcpListener::bind(config.listen).await.map_err(|e| ServerError::Bind {
        addr: config.listen,
        source: e,
    })
}
