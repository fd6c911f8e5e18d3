//! Shared server state: the active model (swapped atomically on reload), the configuration and the feedback
//! store.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use reprieve_model::{Engine, Model, ModelError};

use crate::auth::AdminAuth;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::store::FeedbackStore;
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
    pub telemetry: Arc<Telemetry>,
    active: RwLock<Option<Arc<LoadedModel>>>,
    /// The feedback and audit store; `None` only for servers built with [`AppState::new`].
    feedback: Option<Arc<FeedbackStore>>,
    promoting: Mutex<()>,
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl AppState {
    /// State without a feedback store: verdicts are not audited, breakers never open, and the `Feedback` calls
    /// answer `FAILED_PRECONDITION`. For embedding and scoring benchmarks; `reprieve serve` uses
    /// [`AppState::open`].
    pub fn new(config: ServerConfig) -> Self {
        let telemetry = Arc::new(if config.metrics_listen.is_some() {
            Telemetry::prometheus()
        } else {
            Telemetry::disabled()
        });
        Self {
            auth: AdminAuth::new(config.admin_token.as_deref()),
            telemetry,
            config,
            active: RwLock::new(None),
            feedback: None,
            promoting: Mutex::new(()),
        }
    }

    /// State with the feedback store of `config.store` (opened, or created in a missing or empty directory):
    /// every verdict issued is audited before it is returned. A locked, corrupt or foreign data directory is an
    /// error naming it.
    pub fn open(config: ServerConfig) -> Result<Self, ServerError> {
        let mut state = Self::new(config);
        state.feedback = Some(Arc::new(FeedbackStore::open(
            &state.config.store,
            state.telemetry.clone(),
        )?));
        Ok(state)
    }

    /// The feedback store, if the server has one.
    pub fn feedback(&self) -> Option<&Arc<FeedbackStore>> {
        self.feedback.as_ref()
    }

    /// Ends the feedback store's work (queued writes are committed and flushed, the session is marked clean).
    /// After it, scoring and feedback writes fail with `UNAVAILABLE`.
    pub async fn close(&self) {
        if let Some(feedback) = &self.feedback {
            feedback.close().await;
        }
    }

    /// The model in service, if any.
    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        self.active
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |g| g.clone())
    }

    /// Puts `model` in service (atomically: a request sees the old or the new model, never a mix). With a feedback
    /// store, a version other than the store's active one is promoted there, which closes the breakers of the
    /// other versions (blocking: call it off the async workers, as reloads do).
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
        drop(guard);
        if let Some(feedback) = &self.feedback {
            // Serialised, and of the model in service at that moment: racing reloads leave the store agreeing
            // with the model that ends up serving.
            let _one_at_a_time = self.promoting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(current) = self.current() {
                feedback.promote(current.engine.model.version());
            }
        }
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
