//! Shared server state: the active model (swapped atomically on reload) and the configuration.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use reprieve_model::{Engine, Model, ModelError};

use crate::auth::AdminAuth;
use crate::config::ServerConfig;
use crate::telemetry::Telemetry;

/// A model in service, with where it came from.
#[derive(Debug)]
pub struct LoadedModel {
    pub engine: Engine,
    pub loaded_at: i64,
    /// The artifact path, or `bundled` for the embedded default.
    pub source: String,
}

/// State shared by every service.
#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    /// The guard admin calls opt into.
    pub auth: AdminAuth,
    /// Metrics (recorded only when `config.metrics_listen` is set).
    pub telemetry: Telemetry,
    active: RwLock<Option<Arc<LoadedModel>>>,
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl AppState {
    pub fn new(config: ServerConfig) -> Self {
        let telemetry = if config.metrics_listen.is_some() {
            Telemetry::prometheus()
        } else {
            Telemetry::disabled()
        };
        Self {
            auth: AdminAuth::new(config.admin_token.as_deref()),
            telemetry,
            config,
            active: RwLock::new(None),
        }
    }

    /// The model in service, if any.
    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        self.active
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |g| g.clone())
    }

    /// Puts `model` in service (atomically: a request sees the old or the new model, never a mix).
    pub fn install(&self, model: Model, source: String) -> Arc<LoadedModel> {
        let loaded = Arc::new(LoadedModel {
            engine: Engine::new(Arc::new(model), self.config.policy),
            loaded_at: now_unix(),
            source,
        });
        let mut guard = self.active.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let old = guard.replace(loaded.clone());
        // Under the lock, so that two racing reloads leave the gauge agreeing with the model in service.
        self.telemetry.record_model(
            old.as_ref().map(|m| m.engine.model.version()),
            loaded.engine.model.version(),
        );
        loaded
    }

    /// Loads and installs the artifact at `path`. On any error the current model keeps serving.
    pub fn reload_from(&self, path: &Path) -> Result<Arc<LoadedModel>, ModelError> {
        let model = Model::load(path)?;
        Ok(self.install(model, path.display().to_string()))
    }

    /// The path `ReloadModel` with an empty path reloads from.
    pub fn configured_model_path(&self) -> Option<PathBuf> {
        self.config.model_path.clone()
    }
}
