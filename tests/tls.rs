//! TLS and mutual TLS on the gRPC listener. A CA, a server certificate for 127.0.0.1 and localhost, and client
//! certificates (from that CA and from a stranger's) are made at test time with rcgen; a real server on
//! 127.0.0.1:0 and real tonic clients.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reprieve_e2e::pki::{ExtendedKeyUsagePurpose, TestCa};
use reprieve_e2e::{TestServer, default_model};
use reprieve_proto::v1::reuse_scorer_client::ReuseScorerClient;
use reprieve_proto::v1::{self, ScoreRequest};
use reprieve_server::{AppState, ServerConfig, TlsSettings};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const AT: i64 = 1_780_000_000;
/// Bounds every connection attempt, so that a client the server fails to refuse cleanly cannot hang the test.
const PATIENCE: Duration = Duration::from_secs(30);

/// A CA and a server certificate for 127.0.0.1 and localhost, written to a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("reprieve test CA");
        let (cert, key) = ca.leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).expect("write CA");
        std::fs::write(dir.path().join("server.pem"), cert).expect("write server cert");
        std::fs::write(dir.path().join("server.key"), key).expect("write server key");
        Self { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's TLS settings; with `mutual`, clients need a certificate from this CA.
    fn settings(&self, mutual: bool) -> TlsSettings {
        TlsSettings {
            cert: Some(self.path("server.pem")),
            key: Some(self.path("server.key")),
            client_ca: mutual.then(|| self.path("ca.pem")),
        }
    }

    /// A client that trusts this CA and expects the server to be `name`.
    fn client(&self, name: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca.pem))
            .domain_name(name)
    }
}

fn tls_config(settings: TlsSettings) -> ServerConfig {
    ServerConfig {
        tls: settings,
        ..ServerConfig::default()
    }
}

fn one_object() -> ScoreRequest {
    ScoreRequest {
        objects: vec![v1::ObjectRecord {
            key: "cdn/banners/xmas_300x200.png".into(),
            owner: "web".into(),
            created_unix: Some(AT - 400 * 86_400),
            ..Default::default()
        }],
        at_unix: Some(AT),
    }
}

/// Scores one object on `channel`.
async fn score(channel: Channel) -> Result<v1::ScoreResponse, tonic::Status> {
    ReuseScorerClient::new(channel)
        .score(one_object())
        .await
        .map(tonic::Response::into_inner)
}

/// Connects with `tls` and scores one object: `Err` says where it was refused (handshake or call).
async fn tls_score(server: &TestServer, tls: ClientTlsConfig) -> Result<v1::ScoreResponse, String> {
    let attempt = async {
        let channel = server.tls_channel(tls).await.map_err(|e| format!("connect: {e:?}"))?;
        score(channel).await.map_err(|s| format!("call: {s:?}"))
    };
    tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("the server answers or refuses, it does not hang")
}

/// Connects without TLS and scores one object.
async fn plaintext_score(server: &TestServer) -> Result<v1::ScoreResponse, String> {
    let attempt = async {
        let channel = Channel::from_shared(format!("http://{}", server.addr))
            .expect("endpoint")
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        score(channel).await.map_err(|s| format!("call: {s:?}"))
    };
    tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("the server answers or refuses, it does not hang")
}

/// The services reflection lists on `channel`.
async fn reflected_services(channel: Channel) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection message")
        .expect("a response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection response {other:?}"),
    }
}

#[tokio::test]
async fn tls_clients_score_and_plaintext_clients_are_refused() {
    let pki = Pki::new();
    let server = TestServer::start(tls_config(pki.settings(false)), Some(default_model())).await;

    // The certificate names both localhost and 127.0.0.1.
    for name in ["localhost", "127.0.0.1"] {
        let scored = tls_score(&server, pki.client(name)).await.expect("scores over TLS");
        assert_eq!(scored.verdicts.len(), 1, "{name}");
    }
    // Health and reflection share the listener, and so its TLS.
    let channel = server.tls_channel(pki.client("localhost")).await.expect("TLS channel");
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "reprieve.v1.ReuseScorer".into(),
        })
        .await
        .expect("health over TLS")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let services = reflected_services(channel).await;
    assert!(services.iter().any(|s| s == "reprieve.v1.ReuseScorer"), "{services:?}");

    // No fallback to plaintext on the same port.
    let refused = plaintext_score(&server)
        .await
        .expect_err("a plaintext client is refused");
    assert!(!refused.is_empty());
    // A client that trusts another CA refuses the server, and one that expects another name too.
    let stranger = TestCa::new("stranger CA");
    let untrusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&stranger.pem))
        .domain_name("localhost");
    tls_score(&server, untrusting)
        .await
        .expect_err("the server's certificate is not from the CA the client trusts");
    tls_score(&server, pki.client("reprieve.example"))
        .await
        .expect_err("the server's certificate does not name reprieve.example");

    // The server kept serving through all that.
    tls_score(&server, pki.client("localhost"))
        .await
        .expect("still scores over TLS");
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_client_ca() {
    let pki = Pki::new();
    let server = TestServer::start(tls_config(pki.settings(true)), Some(default_model())).await;

    let without = tls_score(&server, pki.client("localhost")).await;
    assert!(
        without.is_err(),
        "a client without a certificate is refused: {without:?}"
    );
    let stranger = TestCa::new("stranger CA");
    let foreign = tls_score(&server, pki.client("localhost").identity(stranger.client("intruder"))).await;
    assert!(
        foreign.is_err(),
        "a certificate from another CA is refused: {foreign:?}"
    );
    assert!(plaintext_score(&server).await.is_err(), "a plaintext client is refused");

    let admitted = tls_score(&server, pki.client("localhost").identity(pki.ca.client("batch-job")))
        .await
        .expect("a client certificate from the client CA is admitted");
    assert_eq!(admitted.verdicts.len(), 1);
    let channel = server
        .tls_channel(pki.client("127.0.0.1").identity(pki.ca.client("monitor")))
        .await
        .expect("mTLS channel");
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("health over mTLS")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn tls_settings_that_cannot_be_honoured_stop_the_server_before_it_serves() {
    let pki = Pki::new();
    // A certificate and a key of two different pairs.
    let (_, other_key) = pki.ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(pki.path("other.key"), other_key).expect("write key");
    std::fs::write(pki.path("junk.pem"), "-----BEGIN NOTHING-----\n").expect("write junk");
    std::fs::write(pki.path("empty.pem"), "").expect("write empty");
    let with = |f: &dyn Fn(&mut TlsSettings)| {
        let mut s = pki.settings(false);
        f(&mut s);
        s
    };
    let cases: Vec<(&str, TlsSettings, &str)> = vec![
        (
            "missing certificate file",
            with(&|s| s.cert = Some(pki.path("absent.pem"))),
            "absent.pem",
        ),
        (
            "missing key file",
            with(&|s| s.key = Some(pki.path("absent.key"))),
            "absent.key",
        ),
        (
            "key of another certificate",
            with(&|s| s.key = Some(pki.path("other.key"))),
            "does not match",
        ),
        (
            "certificate file without a certificate",
            with(&|s| s.cert = Some(pki.path("empty.pem"))),
            "no PEM certificate",
        ),
        (
            "key file without a key",
            with(&|s| s.key = Some(pki.path("server.pem"))),
            "no PEM private key",
        ),
        ("certificate without a key", with(&|s| s.key = None), "tls.key is not"),
        (
            "client CA without a certificate",
            with(&|s| s.client_ca = Some(pki.path("junk.pem"))),
            "tls.client_ca",
        ),
        (
            "client CA without the server's own certificate",
            TlsSettings {
                client_ca: Some(pki.path("ca.pem")),
                ..TlsSettings::default()
            },
            "tls.client_ca",
        ),
    ];
    for (name, settings, needle) in cases {
        let state = Arc::new(AppState::new(tls_config(settings)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let served = tokio::time::timeout(
            PATIENCE,
            reprieve_server::serve(listener, state, std::future::pending()),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: the server must refuse to start, not serve"));
        let err = served.expect_err(name).to_string();
        assert!(err.contains(needle), "{name}: {err:?} should contain {needle:?}");
        assert!(!err.contains('\n'), "{name}: one line: {err:?}");
    }
}
