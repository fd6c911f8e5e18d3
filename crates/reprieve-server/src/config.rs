//! Server configuration: defaults < TOML file < environment (`REPRIEVE_*`) < command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use reprieve_core::{PolicyConfig, RecordLimits};
use reprieve_store::StoreConfig;
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
    /// Largest gRPC message accepted or sent by `ReuseScorer`, `Feedback` and `Models`, bytes; a larger request is
    /// `RESOURCE_EXHAUSTED`.
    pub max_message_bytes: usize,
    /// Bounds on each record (key length, history length, clock skew).
    pub limits: RecordLimits,
    /// Hard-rule settings of the verdict policy.
    pub policy: PolicyConfig,
    /// Bearer token required by admin calls (`Models.ReloadModel`, `Feedback` writes and `ResetBreaker`); absent:
    /// they are open. Never logged, never serialized.
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// Where Prometheus `/metrics` is served (plain HTTP, its own port); absent: no metrics are recorded.
    pub metrics_listen: Option<SocketAddr>,
    /// The feedback and audit store (`[store]`).
    pub store: StoreSettings,
    /// TLS for the gRPC listener (`[tls]`); without a certificate and key the listener is plaintext.
    pub tls: TlsSettings,
}

/// The `[tls]` section: the gRPC listener's certificate and key (PEM), and optionally the CA whose certificates
/// clients must present (mutual TLS). Every layer (file, environment, flags) may set any of them; whether they
/// form a usable whole is checked when the server starts ([`crate::tls::load`]), so that a certificate from the
/// file and its key from a flag work together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: Option<PathBuf>,
    /// The private key of `cert`, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// CA certificates, PEM: when set, every client must present a certificate issued by one of them (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// How the audit trail acknowledges verdicts before a response carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditDurability {
    /// A response waits until its verdicts are on disk (group commit: one fsync for every request waiting). A
    /// crash never loses a verdict that was returned. The default.
    Fsync,
    /// A response waits until its verdicts are written to the store, which reaches the disk at most
    /// `audit_flush_interval_ms` later: responses no longer wait for an fsync, and a crash (not a clean shutdown)
    /// can lose the verdicts returned in that last interval. The next start says so in the log.
    Buffered,
}

impl AuditDurability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fsync => "fsync",
            Self::Buffered => "buffered",
        }
    }
}

/// The `[store]` section: where the feedback and audit store lives and how it behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// The store's directory (created if missing); relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    /// A restore this long or less after an action is a false positive of that action's verdict.
    pub restore_window_secs: i64,
    /// A breaker opens when the 95% upper bound of its scope's false-delete rate exceeds this ...
    pub breaker_target: f64,
    /// ... and at least this many delete actions were counted in the scope.
    pub breaker_min_actions: u64,
    /// Audited verdicts older than this are pruned; younger ones never are.
    pub audit_retention_secs: i64,
    /// How often the pruning runs.
    pub prune_interval_secs: u64,
    /// The window of `GetPrecision` without `window_days`, and of the precision metrics.
    pub precision_window_secs: i64,
    /// How often the precision metrics are recomputed (a scan of the actions) when feedback arrived.
    pub metrics_refresh_secs: u64,
    /// See [`AuditDurability`].
    pub audit_durability: AuditDurability,
    /// With `audit_durability = "buffered"`: the longest a written verdict waits for its fsync.
    pub audit_flush_interval_ms: u64,
    /// Most verdicts and feedback events queued for the store writer; beyond it, scoring and feedback calls wait
    /// (backpressure) instead of buffering without bound.
    pub write_queue_records: usize,
    /// Most events in one `RecordActions` or `RecordRestores` request (more: `RESOURCE_EXHAUSTED`).
    pub max_events_per_request: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let store = StoreConfig::default();
        Self {
            data_dir: PathBuf::from(reprieve_store::DEFAULT_DATA_DIR),
            restore_window_secs: store.restore_window_secs,
            breaker_target: store.breaker_target,
            breaker_min_actions: store.breaker_min_actions,
            audit_retention_secs: store.audit_retention_secs,
            prune_interval_secs: 3_600,
            precision_window_secs: store.precision_window_secs,
            metrics_refresh_secs: 15,
            audit_durability: AuditDurability::Fsync,
            audit_flush_interval_ms: 50,
            write_queue_records: 100_000,
            max_events_per_request: 10_000,
        }
    }
}

impl StoreSettings {
    /// The store's own settings.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            restore_window_secs: self.restore_window_secs,
            breaker_target: self.breaker_target,
            breaker_min_actions: self.breaker_min_actions,
            audit_retention_secs: self.audit_retention_secs,
            precision_window_secs: self.precision_window_secs,
        }
    }

    /// The first setting out of range, as `store.<name>: why`.
    pub fn check(&self) -> Result<(), String> {
        let bad = |name: &str, why: &str| Err(format!("store.{name}: {why}"));
        if !(self.breaker_target > 0.0 && self.breaker_target < 1.0) {
            return bad("breaker_target", "must be between 0 and 1 (exclusive)");
        }
        if self.breaker_min_actions == 0 {
            return bad("breaker_min_actions", "must be at least 1");
        }
        for (name, v) in [
            ("restore_window_secs", self.restore_window_secs),
            ("audit_retention_secs", self.audit_retention_secs),
            ("precision_window_secs", self.precision_window_secs),
        ] {
            if v <= 0 {
                return bad(name, "must be positive");
            }
        }
        for (name, v) in [
            ("prune_interval_secs", self.prune_interval_secs),
            ("metrics_refresh_secs", self.metrics_refresh_secs),
            ("audit_flush_interval_ms", self.audit_flush_interval_ms),
            ("write_queue_records", self.write_queue_records as u64),
            ("max_events_per_request", self.max_events_per_request as u64),
        ] {
            if v == 0 {
                return bad(name, "must be at least 1");
            }
        }
        if self.write_queue_records > u32::MAX as usize {
            return bad("write_queue_records", "is too large");
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        Ok(())
    }
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
            store,
            tls,
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
            .field("store", store)
            .field("tls", tls)
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
            store: StoreSettings::default(),
            tls: TlsSettings::default(),
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
        config.store.check().map_err(|message| ServerError::Config {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Applies `REPRIEVE_LISTEN`, `REPRIEVE_MODEL`, `REPRIEVE_MAX_OBJECTS_PER_REQUEST`, `REPRIEVE_ADMIN_TOKEN`,
    /// `REPRIEVE_METRICS_LISTEN`, `REPRIEVE_DATA_DIR`, `REPRIEVE_AUDIT_DURABILITY`, `REPRIEVE_TLS_CERT`,
    /// `REPRIEVE_TLS_KEY` and `REPRIEVE_TLS_CLIENT_CA` from `env` (a lookup function, so tests need not touch the
    /// process environment).
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
        if let Some(v) = env("REPRIEVE_DATA_DIR") {
            if v.is_empty() {
                return Err(bad("REPRIEVE_DATA_DIR", &v, "must not be empty".into()));
            }
            self.store.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("REPRIEVE_AUDIT_DURABILITY") {
            self.store.audit_durability = match v.as_str() {
                "fsync" => AuditDurability::Fsync,
                "buffered" => AuditDurability::Buffered,
                _ => {
                    return Err(bad(
                        "REPRIEVE_AUDIT_DURABILITY",
                        &v,
                        "must be `fsync` or `buffered`".into(),
                    ));
                }
            };
        }
        for (name, slot) in [
            ("REPRIEVE_TLS_CERT", &mut self.tls.cert),
            ("REPRIEVE_TLS_KEY", &mut self.tls.key),
            ("REPRIEVE_TLS_CLIENT_CA", &mut self.tls.client_ca),
        ] {
            if let Some(v) = env(name) {
                if v.is_empty() {
                    return Err(bad(name, &v, "must not be empty".into()));
                }
                *slot = Some(PathBuf::from(v));
            }
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

        std::fs::write(
            &file,
            "[store]\ndata_dir = \"/var/lib/reprieve\"\nbreaker_min_actions = 7\naudit_durability = \"buffered\"\n",
        )
        .expect("write config");
        let c = ServerConfig::from_file(&file).expect("parses");
        assert_eq!(c.store.data_dir, PathBuf::from("/var/lib/reprieve"));
        assert_eq!(c.store.store_config().breaker_min_actions, 7);
        assert_eq!(c.store.audit_durability, AuditDurability::Buffered);
        assert_eq!(
            c.store.restore_window_secs,
            StoreSettings::default().restore_window_secs
        );
        let c = c
            .apply_env(|k| match k {
                "REPRIEVE_DATA_DIR" => Some("/srv/reprieve".to_string()),
                "REPRIEVE_AUDIT_DURABILITY" => Some("fsync".to_string()),
                _ => None,
            })
            .expect("env applies");
        assert_eq!(c.store.data_dir, PathBuf::from("/srv/reprieve"));
        assert_eq!(c.store.audit_durability, AuditDurability::Fsync);
        let err = ServerConfig::default()
            .apply_env(|k| (k == "REPRIEVE_AUDIT_DURABILITY").then(|| "sometimes".to_string()))
            .expect_err("an unknown durability is refused");
        assert!(err.to_string().contains("REPRIEVE_AUDIT_DURABILITY"), "{err}");
        for bad in ["breaker_target = 1.5", "store_dir = \"x\"", "write_queue_records = 0"] {
            std::fs::write(&file, format!("[store]\n{bad}\n")).expect("write config");
            let err = ServerConfig::from_file(&file).expect_err(bad);
            assert!(
                err.to_string().contains(bad.split(' ').next().unwrap_or_default()),
                "{err}"
            );
        }
        assert_eq!(
            ServerConfig::default().store.data_dir,
            PathBuf::from(reprieve_store::DEFAULT_DATA_DIR)
        );
    }

    #[test]
    fn tls_settings_layer_per_field() {
        let dir = std::env::temp_dir().join(format!("reprieve-config-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("reprieve.toml");
        std::fs::write(
            &file,
            "[tls]\ncert = \"/etc/reprieve/server.pem\"\nkey = \"/etc/reprieve/server.key\"\n",
        )
        .expect("write config");
        let c = ServerConfig::from_file(&file).expect("parses");
        assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/reprieve/server.pem")));
        assert_eq!(c.tls.client_ca, None);
        assert_eq!(ServerConfig::default().tls, TlsSettings::default());
        let c = c
            .apply_env(|k| match k {
                "REPRIEVE_TLS_KEY" => Some("/run/secrets/server.key".to_string()),
                "REPRIEVE_TLS_CLIENT_CA" => Some("/etc/reprieve/clients.pem".to_string()),
                _ => None,
            })
            .expect("env applies");
        assert_eq!(
            c.tls.cert,
            Some(PathBuf::from("/etc/reprieve/server.pem")),
            "the file's"
        );
        assert_eq!(
            c.tls.key,
            Some(PathBuf::from("/run/secrets/server.key")),
            "the environment's"
        );
        assert_eq!(c.tls.client_ca, Some(PathBuf::from("/etc/reprieve/clients.pem")));
        let err = ServerConfig::default()
            .apply_env(|k| (k == "REPRIEVE_TLS_CERT").then(String::new))
            .expect_err("an empty path is refused");
        assert!(err.to_string().contains("REPRIEVE_TLS_CERT"), "{err}");
        std::fs::write(&file, "[tls]\ncertificate = \"x.pem\"\n").expect("write config");
        let err = ServerConfig::from_file(&file).expect_err("unknown keys are refused");
        assert!(err.to_string().contains("certificate"), "{err}");
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
