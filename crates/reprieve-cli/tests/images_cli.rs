//! `reprieve score` over container images, as a user runs it: the registry's events, an ECR listing and the
//! cluster's objects (the fixtures of `reprieve-images`), the bundled model, real output files.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../reprieve-images/tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

const LIVE: [&str; 6] = [
    "finance/month-end@sha256:a2b289be",
    "platform/agent@sha256:d4f0bc5a",
    "shop/web@sha256:9db548b5",
    "platform/base@sha256:3f4fcca4",
    "platform/base@sha256:9dd8df1e",
    "platform/base@sha256:6da4572a",
];

#[test]
fn score_images_holds_back_every_live_image_and_explains_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("scores.csv");
    let report = dir.path().join("report.md");
    let o = Command::new(env!("CARGO_BIN_EXE_reprieve"))
        .env("RUST_LOG", "info")
        .args([
            "score",
            "--registry-events",
            &fixture("registry-events.jsonl"),
            "--ecr-images",
        ])
        .arg(fixture("ecr-images.json"))
        .args(["--k8s", &fixture("cluster.yaml"), &fixture("pods.json")])
        .args(["--at", "2025-07-01T00:00:00Z", "--allow-unknown-owner", "--out"])
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("reference names no inventory image"), "{stderr}");
    let scores = std::fs::read_to_string(&out).expect("scores");
    assert_eq!(scores.lines().count(), 9, "{scores}");
    for key in LIVE {
        let row = scores
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("{key} in {scores}"));
        assert!(row.contains(",RETAIN,LIVE_REFERENCE"), "{row}");
    }
    let md = std::fs::read_to_string(&report).expect("report");
    assert!(md.contains("| `finance/month-end@sha256:a2b289be"), "{md}");
    assert!(
        md.contains("CronJob finance/month-end-close (close) | tag 2024.06 | 2025-07-01T03:00:00Z |"),
        "{md}"
    );
    assert!(md.contains("Deployment shop/web (web) | tag latest"), "{md}");
    assert!(md.contains("| LIVE_REFERENCE | 6 |"), "{md}");
}

#[test]
fn image_flags_are_refused_with_file_flags() {
    let o = Command::new(env!("CARGO_BIN_EXE_reprieve"))
        .args([
            "score",
            "--inventory",
            "inv.csv",
            "--registry-events",
            "e.jsonl",
            "--at",
            "0",
            "--out",
            "x.csv",
        ])
        .output()
        .expect("the binary runs");
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(env!("CARGO_BIN_EXE_reprieve"))
        .args(["score", "--k8s", "c.yaml", "--at", "0", "--out", "x.csv"])
        .output()
        .expect("the binary runs");
    assert_eq!(o.status.code(), Some(2), "--k8s alone names no images");
}
