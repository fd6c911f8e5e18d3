//! Server configuration: defaults < TOML file < environment (`REPRIEVE_*`) < command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use reprieve_core::{PolicyConfig, RecordLimits};
use serde::{Deserialize, Serialize};

use crate::error::ServerError;

/// Everything `reprieve serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC listen address. Loopback by default: exposing it is a deliberate choice.
    pub listen: SocketAddr,
    /// Model artifact to load; absent: the bundled default model.
    pub model_path: Option<PathBuf>,
    /// Most objects accepted in one `Score` request or one `ScoreStream` chunk.
    pub max_objects_per_request: usize,
    /// Largest accepted gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Bounds on each record (key length, history length, clock skew).
    pub limits: RecordLimits,
    /// Hard-rule settings of the verdict policy.
    pub policy: PolicyConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            model_path: None,
            max_objects_per_request: 10_000,
            max_message_bytes: 64 * 1024 * 1024,
            limits: RecordLimits::default(),
            policy: PolicyConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServerError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ServerError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Applies `REPRIEVE_LISTEN`, `REPRIEVE_MODEL` and `REPRIEVE_MAX_OBJECTS_PER_REQUEST`
    /// from `env` (a lookup function, so tests need not touch the process environment).
    pub fn apply_env(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, ServerError> {
        let bad = |name: &str, value: &str, why: String| ServerError::Env {
            name: name.to_string(),
            value: value.to_string(),
            message: why,
        };
        if let Some(v) = env("REPRIEVE_LISTEN") {
            self.listen = v.parse().map_err(|e| bad("REPRIEVE_LISTEN", &v, format!("{e}")))?;
        }
        if let Some(v) = env("REPRIEVE_MODEL") {
            self.model_path = Some(PathBuf::from(v));
        }
        if let Some(v) = env("REPRIEVE_MAX_OBJECTS_PER_REQUEST") {
            self.max_objects_per_request = v
                .parse()
                .map_err(|e| bad("REPRIEVE_MAX_OBJECTS_PER_REQUEST", &v, format!("{e}")))?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("reprieve-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("reprieve.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:6000\"\nmax_objects_per_request = 5\n[policy]\nmin_age_secs = 60\n",
        )
        .expect("write config");
        let c = ServerConfig::from_file(&file).expect("parses");
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.policy.min_age_secs, 60);
        assert_eq!(c.policy.min_history_secs, PolicyConfig::default().min_history_secs);
        let c = c
            .apply_env(|k| (k == "REPRIEVE_MAX_OBJECTS_PER_REQUEST").then(|| "7".to_string()))
            .expect("env applies");
        assert_eq!(c.max_objects_per_request, 7);
        let err = ServerConfig::default().apply_env(|k| (k == "REPRIEVE_LISTEN").then(|| "nope".to_string()));
        assert!(err.is_err());
        std::fs::write(&file, "lisen = 1\n").expect("write config");
        assert!(ServerConfig::from_file(&file).is_err(), "unknown keys are refused");
    }
}
