//! Reprieve's gRPC server: `ReuseScorer` and `Models` over tonic, with `grpc.health.v1` health, server
//! reflection (v1 and v1alpha, so `grpcurl` works without proto files) and graceful shutdown.
//!
//! ```no_run
//! # async fn run(model: reprieve_model::Model) -> Result<(), reprieve_server::ServerError> {
//! use std::sync::Arc;
//! let state = Arc::new(reprieve_server::AppState::new(reprieve_server::ServerConfig::default()));
//! state.install(model, "bundled".into());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
//! reprieve_server::serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! - [`scorer`]: scoring, validation first; [`models`]: model info and hot reload.
//! - [`state`]: the active model, swapped atomically; [`config`]: layered configuration.
//! - [`error`]: the single mapping from refused requests to gRPC status codes.
//! - [`auth`]: the bearer-token guard admin calls opt into; [`deadline`]: client deadlines inside a batch.
//! - [`telemetry`]: a span per call and Prometheus metrics ([`serve_metrics`] on their own listener).

pub mod auth;
pub mod config;
pub mod deadline;
pub mod error;
pub mod models;
pub mod scorer;
pub mod state;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use reprieve_proto::v1::models_server::ModelsServer;
use reprieve_proto::v1::reuse_scorer_server::ReuseScorerServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

pub use config::ServerConfig;
pub use error::ServerError;
pub use models::{ReloadOutcome, reload_configured};
pub use state::AppState;
pub use telemetry::serve_metrics;

/// Serves every Reprieve service on `listener` until `shutdown` completes; in-flight calls are finished first.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let max = state.config.max_message_bytes;
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
        "reprieve gRPC server listening"
    );
    let upkeep = tokio::spawn(telemetry::upkeep(state.clone()));
    let served = Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            ReuseScorerServer::new(scorer::ScorerService::new(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(ModelsServer::new(models::ModelsService::new(state.clone())))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    upkeep.abort();
    served?;
    tracing::info!("reprieve gRPC server stopped");
    Ok(())
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
