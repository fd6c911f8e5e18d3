//! TLS and mutual TLS for the gRPC listener (rustls through tonic, with the `ring` provider).
//!
//! [`load`] turns the `[tls]` settings into a tonic [`ServerTlsConfig`], or into one clear error naming the
//! setting and the file: a missing or unreadable file, a file without a PEM certificate or key, a key that does
//! not belong to the certificate, a client CA file without a usable certificate. The check builds the same rustls
//! configuration the listener will use, so that a start never gets as far as listening with a bad certificate, and
//! it never falls back to plaintext: settings that ask for TLS either yield a TLS listener or an error.
//!
//! With `client_ca` set, every client must present a certificate issued by one of those CAs (mutual TLS); a client
//! without one, or with one from another CA, fails the handshake and never reaches a service. Health and
//! reflection share the listener and so its TLS. The Prometheus listener is separate and stays plain HTTP.

use std::path::Path;
use std::time::Duration;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::config::TlsSettings;
use crate::error::ServerError;

/// How long a client may take to complete its handshake: a connection that stalls in it is closed rather than held.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the gRPC listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Plaintext,
    /// TLS with the server's certificate; clients are not asked for one.
    Tls,
    /// TLS, and every client must present a certificate issued by the configured client CA.
    Mutual,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Tls => "tls",
            Self::Mutual => "mutual-tls",
        }
    }
}

/// A checked TLS configuration, ready for the listener.
#[derive(Debug, Clone)]
pub struct LoadedTls {
    pub config: ServerTlsConfig,
    pub mode: TlsMode,
}

/// Reads and checks the files `settings` name. `Ok(None)`: no TLS setting at all (plaintext). Any TLS setting
/// that cannot be honoured is an error, never plaintext.
pub fn load(settings: &TlsSettings) -> Result<Option<LoadedTls>, ServerError> {
    let (cert_path, key_path) = match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            return match &settings.client_ca {
                Some(ca) => Err(fail(format!(
                    "tls.client_ca is set ({}) but tls.cert and tls.key are not: mutual TLS needs the server's own \
                     certificate and key",
                    ca.display()
                ))),
                None => Ok(None),
            };
        }
        (Some(_), None) => {
            return Err(fail(
                "tls.cert is set but tls.key is not: set both (TLS) or neither (plaintext)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                "tls.key is set but tls.cert is not: set both (TLS) or neither (plaintext)".into(),
            ));
        }
    };

    let cert_pem = read(cert_path, "tls.cert")?;
    certificates(&cert_pem).map_err(|why| fail(format!("tls.cert {}: {why}", cert_path.display())))?;
    let key_pem = read(key_path, "tls.key")?;
    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        fail(match e {
            pem::Error::NoItemsFound => format!(
                "tls.key {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file",
                key_path.display()
            ),
            other => format!("tls.key {}: not a valid PEM private key: {other}", key_path.display()),
        })
    })?;
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(&cert_pem, &key_pem))
        .timeout(HANDSHAKE_TIMEOUT);
    // rustls parses the certificate and checks the key against it when the acceptor is built: build it now.
    if let Err(e) = Server::builder().tls_config(config.clone()) {
        let why = error_chain(&e);
        return Err(fail(if why.contains("KeyMismatch") {
            format!(
                "tls.key {} does not match the certificate in tls.cert {}",
                key_path.display(),
                cert_path.display()
            )
        } else {
            format!(
                "tls.cert {} with tls.key {} is unusable: {why}",
                cert_path.display(),
                key_path.display()
            )
        }));
    }
    let mut mode = TlsMode::Tls;
    if let Some(ca_path) = &settings.client_ca {
        let ca_pem = read(ca_path, "tls.client_ca")?;
        certificates(&ca_pem).map_err(|why| fail(format!("tls.client_ca {}: {why}", ca_path.display())))?;
        config = config.client_ca_root(Certificate::from_pem(&ca_pem));
        if let Err(e) = Server::builder().tls_config(config.clone()) {
            return Err(fail(format!(
                "tls.client_ca {}: no usable CA certificate: {}",
                ca_path.display(),
                error_chain(&e)
            )));
        }
        mode = TlsMode::Mutual;
    }
    Ok(Some(LoadedTls { config, mode }))
}

fn fail(message: String) -> ServerError {
    ServerError::Tls(message)
}

fn read(path: &Path, setting: &str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|e| fail(format!("{setting} {}: cannot read it: {e}", path.display())))
}

/// Checks that `pem` holds at least one well-formed PEM certificate.
fn certificates(pem: &[u8]) -> Result<(), String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (BEGIN CERTIFICATE) in the file".into());
    }
    Ok(())
}

/// An error and its causes on one line (tonic's own message is only "transport error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn settings(cert: Option<&str>, key: Option<&str>, ca: Option<&str>) -> TlsSettings {
        TlsSettings {
            cert: cert.map(PathBuf::from),
            key: key.map(PathBuf::from),
            client_ca: ca.map(PathBuf::from),
        }
    }

    #[test]
    fn incomplete_settings_are_errors_not_plaintext() {
        assert!(load(&TlsSettings::default()).expect("no TLS").is_none());
        for (s, needle) in [
            (settings(Some("c.pem"), None, None), "tls.key is not"),
            (settings(None, Some("k.pem"), None), "tls.cert is not"),
            (settings(None, None, Some("ca.pem")), "tls.client_ca is set"),
        ] {
            let err = load(&s).expect_err("incomplete");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn unreadable_and_non_pem_files_are_named() {
        let dir = std::env::temp_dir().join(format!("reprieve-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let missing = dir.join("absent.pem");
        let err = load(&settings(missing.to_str(), junk.to_str(), None)).expect_err("missing cert");
        assert!(err.to_string().starts_with("tls.cert "), "{err}");
        assert!(err.to_string().contains("cannot read it"), "{err}");
        let err = load(&settings(junk.to_str(), junk.to_str(), None)).expect_err("junk cert");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        assert!(err.to_string().contains("junk.pem"), "{err}");
    }
}
