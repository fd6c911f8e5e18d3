//! `reprieve.v1.Models`: what model is serving, and atomic reloads that never leave the server without one. A
//! reload that puts another model version in service promotes it in the feedback store ([`AppState::install`]),
//! which closes the precision breakers of the other versions.

use std::path::PathBuf;
use std::sync::Arc;

use reprieve_proto::v1::models_server::Models;
use reprieve_proto::v1::{
    GetModelRequest, ListModelsRequest, ListModelsResponse, ModelInfo, ReloadModelRequest, Thresholds,
};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::error::{RequestError, to_status};
use crate::state::{AppState, LoadedModel};
use crate::telemetry::Call;

#[derive(Debug, Clone)]
pub struct ModelsService {
    state: Arc<AppState>,
}

impl ModelsService {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// The wire description of a loaded model.
pub fn model_info(loaded: &LoadedModel, active: bool) -> ModelInfo {
    let a = loaded.engine.model.artifact();
    ModelInfo {
        version: a.version.clone(),
        kind: a.scorer.kind().to_string(),
        feature_schema_version: a.feature_schema.version.clone(),
        feature_schema_hash: a.feature_schema.hash.clone(),
        feature_names: a.feature_schema.names.clone(),
        thresholds: Some(Thresholds {
            delete_max_probability: a.thresholds.delete_max,
            archive_max_probability: a.thresholds.archive_max,
            retain_min_probability: a.thresholds.retain_min,
        }),
        horizon_seconds: a.horizon_secs,
        metrics: a.metrics.clone().into_iter().collect(),
        loaded_at_unix: loaded.loaded_at,
        active,
        source: loaded.source.clone(),
    }
}

#[tonic::async_trait]
impl Models for ModelsService {
    async fn list_models(&self, _: Request<ListModelsRequest>) -> Result<Response<ListModelsResponse>, Status> {
        let call = Call::start(&self.state, "ListModels");
        let models = self.state.current().map(|m| model_info(&m, true)).into_iter().collect();
        call.finish(Ok(()));
        Ok(Response::new(ListModelsResponse { models }))
    }

    async fn get_model(&self, request: Request<GetModelRequest>) -> Result<Response<ModelInfo>, Status> {
        let call = Call::start(&self.state, "GetModel");
        let version = request.into_inner().version;
        let result = self.get(version);
        call.finish(result.as_ref().map(|_| ()));
        result.map(Response::new)
    }

    async fn reload_model(&self, request: Request<ReloadModelRequest>) -> Result<Response<ModelInfo>, Status> {
        let call = Call::start(&self.state, "ReloadModel");
        let span = call.span().clone();
        let result = self.reload(request).instrument(span).await;
        call.finish(result.as_ref().map(|_| ()));
        result.map(Response::new)
    }
}

impl ModelsService {
    fn get(&self, version: String) -> Result<ModelInfo, Status> {
        let loaded = self.state.current().ok_or_else(|| to_status(RequestError::NoModel))?;
        if !version.is_empty() && version != loaded.engine.model.version() {
            return Err(to_status(RequestError::UnknownModel(version)));
        }
        Ok(model_info(&loaded, true))
    }

    async fn reload(&self, request: Request<ReloadModelRequest>) -> Result<ModelInfo, Status> {
        // Admin call: the bearer token comes before anything else, even validation.
        self.state.auth.authorize(request.metadata())?;
        let path = request.into_inner().path;
        let path = if path.is_empty() {
            self.state.configured_model_path().ok_or_else(|| {
                Status::invalid_argument("path: empty, and the server has no configured model_path to reload")
            })?
        } else {
            PathBuf::from(path)
        };
        let state = self.state.clone();
        let result = tokio::task::spawn_blocking(move || state.reload_from(&path).map_err(|e| (path, e)))
            .await
            .map_err(|e| Status::internal(format!("reload task failed: {e}")))?;
        match result {
            Ok(loaded) => {
                tracing::info!(version = loaded.engine.model.version(), source = %loaded.source, "model reloaded");
                Ok(model_info(&loaded, true))
            }
            Err((path, e)) => {
                tracing::warn!(path = %path.display(), error = %e, "model reload refused; the current model keeps serving");
                Err(to_status(RequestError::Model(e)))
            }
        }
    }
}

/// What a reload of the configured artifact did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The artifact loaded and is in service.
    Reloaded(Arc<LoadedModel>),
    /// The server runs the bundled model: there is no file to reload.
    NothingToReload,
    /// The artifact was refused (the reason); the previous model keeps serving.
    Refused(String),
}

/// Reloads `model_path` from the configuration (the SIGHUP path), logging the outcome with `trigger`.
pub async fn reload_configured(state: &Arc<AppState>, trigger: &'static str) -> ReloadOutcome {
    let Some(path) = state.configured_model_path() else {
        tracing::info!(
            trigger,
            "reload requested, but the server runs the bundled model: nothing to reload"
        );
        return ReloadOutcome::NothingToReload;
    };
    let task_state = state.clone();
    let task_path = path.clone();
    match tokio::task::spawn_blocking(move || task_state.reload_from(&task_path)).await {
        Ok(Ok(loaded)) => {
            tracing::info!(trigger, version = loaded.engine.model.version(), source = %loaded.source, "model reloaded");
            ReloadOutcome::Reloaded(loaded)
        }
        Ok(Err(e)) => {
            tracing::warn!(trigger, path = %path.display(), error = %e, "model reload refused; the current model keeps serving");
            ReloadOutcome::Refused(e.to_string())
        }
        Err(e) => {
            tracing::error!(trigger, path = %path.display(), error = %e, "model reload task failed; the current model keeps serving");
            ReloadOutcome::Refused(format!("reload task failed: {e}"))
        }
    }
}
