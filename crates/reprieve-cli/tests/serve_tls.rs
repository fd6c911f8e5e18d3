//! `reprieve serve` with TLS settings from flags, the environment and the config file: settings that cannot be
//! honoured stop the start with one line and exit code 1 before the store is touched (never a plaintext
//! listener); good ones give a mutual-TLS listener that admits only clients with a certificate from the client CA.

mod common;

use std::time::Duration;

use common::{ServeProcess, arg, reprieve};

use reprieve_e2e::pki::{ExtendedKeyUsagePurpose, TestCa};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[test]
fn tls_settings_that_cannot_be_honoured_stop_the_start_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not PEM at all\n").expect("write junk");
    let config = dir.path().join("reprieve.toml");
    let data_dir = dir.path().join("data");
    let absent = dir.path().join("absent.pem");
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a missing certificate file (flags)",
            vec!["--tls-cert", arg(&absent), "--tls-key", arg(&junk)],
            vec![],
            None,
            "tls.cert",
        ),
        (
            "a certificate without a key",
            vec!["--tls-cert", arg(&junk)],
            vec![],
            None,
            "tls.key is not",
        ),
        (
            "no certificate in the file (environment)",
            vec![],
            vec![("REPRIEVE_TLS_CERT", arg(&junk)), ("REPRIEVE_TLS_KEY", arg(&junk))],
            None,
            "no PEM certificate",
        ),
        (
            "a client CA without the server's certificate (file)",
            vec![],
            vec![],
            Some("[tls]\nclient_ca = \"ca.pem\"\n"),
            "tls.client_ca is set",
        ),
        (
            "an unknown [tls] key (file)",
            vec![],
            vec![],
            Some("[tls]\ncertificate = \"server.pem\"\n"),
            "certificate",
        ),
    ];
    for (name, flags, env, file, needle) in cases {
        let mut command = reprieve();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", arg(&data_dir)])
            .args(&flags)
            .envs(env);
        if let Some(text) = file {
            std::fs::write(&config, text).expect("write config");
            command.args(["--config", arg(&config)]);
        }
        let out = command.output().expect("run reprieve serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("reprieve: error: ")).collect();
        assert_eq!(errors.len(), 1, "{name}: one error line: {stderr}");
        assert!(
            errors[0].contains(needle),
            "{name}: {:?} should contain {needle:?}",
            errors[0]
        );
        assert!(!stderr.contains("listening"), "{name}: nothing listened: {stderr}");
        assert!(!data_dir.exists(), "{name}: the store was not created");
    }
}

// Multi-threaded: while this thread waits for the server process to stop, the client's connection task must still
// answer the server's graceful goodbye, or the stop waits out its whole grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_from_flags_and_environment_admits_only_the_client_cas_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("reprieve CLI test CA");
    let (cert, key) = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = ca.leaf(&["batch-job"], ExtendedKeyUsagePurpose::ClientAuth);
    for (name, text) in [("server.pem", &cert), ("server.key", &key), ("ca.pem", &ca.pem)] {
        std::fs::write(dir.path().join(name), text).expect("write PEM");
    }
    let mut server = ServeProcess::spawn(
        reprieve()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--tls-cert", arg(&dir.path().join("server.pem"))])
            .args(["--tls-key", arg(&dir.path().join("server.key"))])
            .env("REPRIEVE_TLS_CLIENT_CA", dir.path().join("ca.pem")),
    );
    let (addr, listening) = (server.addr.clone(), server.listening.clone());
    assert!(listening.contains("mutual-tls"), "{listening}");

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost");
    let check = |tls: ClientTlsConfig| {
        let endpoint = format!("https://{addr}");
        async move {
            let attempt = async {
                let channel = Channel::from_shared(endpoint)
                    .expect("endpoint")
                    .tls_config(tls)
                    .map_err(|e| e.to_string())?
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                HealthClient::new(channel)
                    .check(HealthCheckRequest { service: String::new() })
                    .await
                    .map(|r| r.into_inner().status)
                    .map_err(|s| s.to_string())
            };
            tokio::time::timeout(Duration::from_secs(30), attempt)
                .await
                .expect("answered or refused, not hung")
        }
    };
    let refused = check(tls.clone()).await;
    let admitted = check(tls.identity(Identity::from_pem(client_cert, client_key))).await;
    let exit = server.terminate();
    assert!(refused.is_err(), "no client certificate: {refused:?}");
    assert_eq!(admitted, Ok(ServingStatus::Serving as i32));
    assert!(exit.success(), "{exit:?}");
}
