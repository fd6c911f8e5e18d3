//! Generates a registry benchmark (not a test): an `aws ecr describe-images` listing of N images, M registry pull
//! events (JSON Lines, 10 events per envelope, 80% by tag with the served digest, 20% by digest) and a cluster
//! file naming some of the images. Then time `reprieve score` on it:
//!
//! ```sh
//! cargo run --example gen_bench -- /var/tmp/img-bench 1000000 10000000
//! time reprieve score --ecr-images /var/tmp/img-bench/ecr.json --registry-events /var/tmp/img-bench/events.jsonl \
//!   --k8s /var/tmp/img-bench/cluster.yaml --at 2025-07-01T00:00:00Z --allow-unknown-owner \
//!   --out /var/tmp/img-bench/scores.parquet --report /var/tmp/img-bench/report.md
//! ```

use std::io::{BufWriter, Write};

// A small deterministic generator (SplitMix64): the same arguments give the same files.
use reprieve_images::synth::Rng;

const AT: i64 = 1_751_328_000; // 2025-07-01T00:00:00Z
const DAY: i64 = 86_400;

fn digest(i: u64) -> String {
    format!(
        "sha256:{:016x}{:016x}{:016x}{:016x}",
        i,
        i.wrapping_mul(31),
        i ^ 0xabcdef,
        !i
    )
}

fn repo(i: u64) -> String {
    format!("team-{}/service-{}", i % 50, i % 2_000)
}

fn rfc3339(t: i64) -> String {
    reprieve_core::time::format_rfc3339(t)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).map_or("/var/tmp/img-bench", String::as_str));
    let images: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let events: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    std::fs::create_dir_all(&dir)?;
    let mut rng = Rng(7);

    let mut ecr = BufWriter::new(std::fs::File::create(dir.join("ecr.json"))?);
    writeln!(ecr, "{{\n    \"imageDetails\": [")?;
    for i in 0..images {
        let pushed = AT - 30 * DAY - rng.below(700 * DAY as u64) as i64;
        let tags = match rng.below(4) {
            0 => String::new(),
            1 => format!("\"1.{}.{}\"", i % 40, i % 7),
            2 => format!("\"main-{:07x}\", \"build-{i}\"", i),
            _ => "\"latest\"".to_owned(),
        };
        let last_pull = if rng.below(3) == 0 {
            String::new()
        } else {
            format!(
                ", \"lastRecordedPullTime\": {}.0",
                pushed + rng.below((AT - pushed) as u64) as i64
            )
        };
        writeln!(
            ecr,
            "        {{\"registryId\": \"123456789012\", \"repositoryName\": \"{}\", \"imageDigest\": \"{}\", \"imageTags\": [{tags}], \"imageSizeInBytes\": {}, \"imagePushedAt\": {pushed}.0, \"imageManifestMediaType\": \"application/vnd.oci.image.manifest.v1+json\"{last_pull}}}{}",
            repo(i),
            digest(i),
            1_000_000 + rng.below(900_000_000),
            if i + 1 < images { "," } else { "" }
        )?;
    }
    writeln!(ecr, "    ]\n}}")?;
    ecr.flush()?;

    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("events.jsonl"))?);
    let mut line = String::new();
    for n in 0..events {
        // Popular images get most pulls: a squared uniform skews towards low indexes.
        let u = rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
        let i = ((u * u) * images as f64) as u64 % images.max(1);
        let t = AT - 1 - rng.below(365 * DAY as u64) as i64;
        let tag = if rng.below(5) == 0 {
            String::new()
        } else {
            ",\"tag\":\"latest\"".to_owned()
        };
        if n % 10 != 0 {
            line.push(',');
        }
        line.push_str(&format!(
            "{{\"id\":\"{n:x}\",\"timestamp\":\"{}\",\"action\":\"pull\",\"target\":{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":1530,\"digest\":\"{}\",\"repository\":\"{}\"{tag}}},\"request\":{{\"host\":\"registry.example.com\",\"method\":\"GET\"}}}}",
            rfc3339(t),
            digest(i),
            repo(i)
        ));
        if n % 10 == 9 || n + 1 == events {
            writeln!(out, "{{\"events\":[{line}]}}")?;
            line.clear();
        }
    }
    out.flush()?;

    let mut k8s = BufWriter::new(std::fs::File::create(dir.join("cluster.yaml"))?);
    for i in 0..1_000u64 {
        let image = if i % 2 == 0 {
            format!("registry.example.com/{}@{}", repo(i), digest(i))
        } else {
            format!("registry.example.com/{}:latest", repo(i))
        };
        writeln!(
            k8s,
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: svc-{i}, namespace: team-{}}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}",
            i % 50
        )?;
    }
    k8s.flush()?;
    Ok(())
}
