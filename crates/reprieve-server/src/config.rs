//! Server configuration: defaults < TOML file < environment (`REPRIEVE_*`) < command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use reprieve_core::{PolicyConfig, RecordLimits};
use serde::{Deserialize, Serialize};

use crate::error::ServerError;

/// Everything `reprieve serve` can be told. Its `Debug` output redacts the admin token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
    /// Bearer token required by admin calls (`Models.ReloadModel`, later `Feedback` writes); absent: they are open.
    /// Never logged, never serialized.
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// Where Prometheus `/metrics` is served (plain HTTP, its own port); absent: no metrics are recorded.
    pub metrics_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Self {
            listen,
            model_path,
            max_objects_per_request,
            max_message_bytes,
            limits,
            policy,
            admin_token,
            metrics_listen,
        } = self;
        f.debug_struct("ServerConfig")
            .field("listen", listen)
            .field("model_path", model_path)
            .field("max_objects_per_request", max_objects_per_request)
            .field("max_message_bytes", max_message_bytes)
            .field("limits", limits)
            .field("policy", policy)
            .field("admin_token", &admin_token.as_ref().map(|_| "<redacted>"))
            .field("metrics_listen", metrics_listen)
            .finish()
    }
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
            admin_token: None,
            metrics_listen: None,
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
        let config: Self = toml::from_str(&text).map_err(|e| ServerError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if config.admin_token.as_deref().is_some_and(|t| !valid_token(t)) {
            return Err(ServerError::Config {
                path: path.to_path_buf(),
                message: format!("admin_token: {TOKEN_RULE}"),
            });
        }
        Ok(config)
    }

    /// Applies `REPRIEVE_LISTEN`, `REPRIEVE_MODEL`, `REPRIEVE_MAX_OBJECTS_PER_REQUEST`, `REPRIEVE_ADMIN_TOKEN` and
    /// `REPRIEVE_METRICS_LISTEN` from `env` (a lookup function, so tests need not touch the process environment).
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
        if let Some(v) = env("REPRIEVE_ADMIN_TOKEN") {
            if !valid_token(&v) {
                // The value is a secret: it is not repeated in the error.
                return Err(bad("REPRIEVE_ADMIN_TOKEN", "<redacted>", TOKEN_RULE.to_string()));
            }
            self.admin_token = Some(v);
        }
        if let Some(v) = env("REPRIEVE_METRICS_LISTEN") {
            self.metrics_listen = Some(
                v.parse()
                    .map_err(|e| bad("REPRIEVE_METRICS_LISTEN", &v, format!("{e}")))?,
            );
        }
        Ok(self)
    }
}

const TOKEN_RULE: &str = "must be at least 16 visible ASCII characters (no spaces)";

/// A token short enough to guess, or one that cannot travel in a gRPC metadata value, is a configuration error
/// rather than a silently weak or unusable guard.
fn valid_token(token: &str) -> bool {
    token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic())
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

    #[test]
    fn the_admin_token_is_never_shown() {
        let secret = "s3cr3t-t0ken-0123456789";
        let c = ServerConfig::default()
            .apply_env(|k| match k {
                "REPRIEVE_ADMIN_TOKEN" => Some(secret.to_string()),
                "REPRIEVE_METRICS_LISTEN" => Some("127.0.0.1:9464".to_string()),
                _ => None,
            })
            .expect("env applies");
        assert_eq!(c.admin_token.as_deref(), Some(secret));
        assert_eq!(c.metrics_listen, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(!toml::to_string(&c).expect("serializes").contains(secret));
        let err = ServerConfig::default()
            .apply_env(|k| (k == "REPRIEVE_ADMIN_TOKEN").then(|| "short".to_string()))
            .expect_err("a weak token is refused");
        assert!(!err.to_string().contains("short"), "{err}");
    }
}
