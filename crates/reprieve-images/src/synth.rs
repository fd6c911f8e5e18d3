//! A seeded synthetic registry history in the registry's own notification format (JSON Lines, one envelope per
//! line), to try `reprieve evaluate --registry-events` and `reprieve train --registry-events` without a registry
//! and to test them. Repositories of four kinds:
//!
//! - *service*: a build every 5-15 days, pushed as `latest` plus a version tag (`1.N.0`) or a branch build tag
//!   (`main-1a2b3c4`), sometimes as a multi-arch index with two untagged children; pulled by `latest` a few times a
//!   day (so each pull counts for whatever `latest` pointed to then), old builds now and then by digest (rollbacks);
//! - *monthly*: a CronJob image under a date tag (`2024.06`), pulled by tag once a month;
//! - *digest*: pinned by digest, pulled only by digest about weekly, rebuilt every 30-60 days;
//! - *one-off*: pushed, pulled a few times within two days, never again; half of them deleted a month later.
//!
//! The same configuration writes the same file.

use std::io::{BufWriter, Write};
use std::path::Path;

use reprieve_core::UnixSeconds;
use reprieve_core::time::{DAY, format_rfc3339};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthRegistry {
    pub repositories: u32,
    pub days: u32,
    /// First event time.
    pub start: UnixSeconds,
    pub seed: u64,
}

impl Default for SynthRegistry {
    fn default() -> Self {
        Self {
            repositories: 40,
            days: 120,
            start: 1_735_689_600, // 2025-01-01T00:00:00Z
            seed: 1,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynthSummary {
    pub images: u64,
    pub pushes: u64,
    pub pulls: u64,
    pub deletes: u64,
}

/// SplitMix64: small, seeded, portable (also what the `gen_bench` example draws from).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as u64) as i64
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One event before it is written.
struct Event {
    ts: UnixSeconds,
    action: &'static str,
    repository: String,
    digest: Option<String>,
    tag: Option<String>,
    media_type: &'static str,
    children: Vec<String>,
}

impl Event {
    fn line(&self, n: u64) -> String {
        let mut target = format!(
            "\"mediaType\":\"{}\",\"size\":{},\"repository\":\"{}\"",
            self.media_type,
            900 + n % 700,
            self.repository
        );
        if let Some(d) = &self.digest {
            target.push_str(&format!(",\"digest\":\"{d}\""));
        }
        if let Some(t) = &self.tag {
            target.push_str(&format!(",\"tag\":\"{t}\""));
        }
        if !self.children.is_empty() {
            let refs: Vec<String> = self
                .children
                .iter()
                .map(|c| format!("{{\"mediaType\":\"{MANIFEST}\",\"digest\":\"{c}\"}}"))
                .collect();
            target.push_str(&format!(",\"references\":[{}]", refs.join(",")));
        }
        let method = if self.action == "pull" { "GET" } else { "PUT" };
        format!(
            "{{\"events\":[{{\"id\":\"{n:08x}\",\"timestamp\":\"{}\",\"action\":\"{}\",\"target\":{{{target}}},\
             \"request\":{{\"host\":\"registry.example.com\",\"method\":\"{method}\"}}}}]}}",
            format_rfc3339(self.ts),
            self.action
        )
    }
}

struct Writer {
    rng: Rng,
    events: Vec<Event>,
    images: u64,
}

impl Writer {
    fn digest(&mut self) -> String {
        self.images += 1;
        let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
        format!("sha256:{a:016x}{b:016x}{:016x}{:016x}", a ^ b, self.images)
    }

    fn push(&mut self, ts: UnixSeconds, repository: &str, digest: &str, tag: Option<String>, children: Vec<String>) {
        self.events.push(Event {
            ts,
            action: "push",
            repository: repository.to_owned(),
            digest: Some(digest.to_owned()),
            tag,
            media_type: if children.is_empty() { MANIFEST } else { INDEX },
            children,
        });
    }

    fn pull(&mut self, ts: UnixSeconds, repository: &str, digest: Option<&str>, tag: Option<&str>) {
        self.events.push(Event {
            ts,
            action: "pull",
            repository: repository.to_owned(),
            digest: digest.map(str::to_owned),
            tag: tag.map(str::to_owned),
            media_type: MANIFEST,
            children: Vec::new(),
        });
    }

    fn delete(&mut self, ts: UnixSeconds, repository: &str, digest: &str) {
        self.events.push(Event {
            ts,
            action: "delete",
            repository: repository.to_owned(),
            digest: Some(digest.to_owned()),
            tag: None,
            media_type: MANIFEST,
            children: Vec::new(),
        });
    }

    /// A build: an image (or an index with two untagged children pushed just before it) under `tags`.
    fn build(&mut self, ts: UnixSeconds, repository: &str, tags: &[String], index: bool) -> String {
        let digest = self.digest();
        let children = if index {
            let c: Vec<String> = (0..2).map(|_| self.digest()).collect();
            for (i, child) in c.iter().enumerate() {
                self.push(ts - 60 + i as i64, repository, child, None, Vec::new());
            }
            c
        } else {
            Vec::new()
        };
        let mut children = Some(children);
        for tag in tags {
            self.push(
                ts,
                repository,
                &digest,
                Some(tag.clone()),
                children.take().unwrap_or_default(),
            );
        }
        digest
    }
}

/// Writes the history to `path` (JSON Lines, sorted by time).
pub fn write_registry_events(config: &SynthRegistry, path: &Path) -> std::io::Result<SynthSummary> {
    let mut w = Writer {
        rng: Rng(config.seed),
        events: Vec::new(),
        images: 0,
    };
    let start = config.start;
    let end = start + i64::from(config.days) * DAY;
    for r in 0..config.repositories {
        let kind = r % 4;
        let repository = format!(
            "team-{}/{}-{r}",
            r % 5,
            ["service", "monthly", "pinned", "oneoff"][kind as usize]
        );
        match kind {
            0 => {
                let mut t = start + w.rng.between(0, 5 * DAY);
                let mut builds: Vec<(UnixSeconds, String)> = Vec::new();
                let mut n = 0;
                while t < end {
                    n += 1;
                    let second = if w.rng.below(2) == 0 {
                        format!("1.{n}.0")
                    } else {
                        format!("main-{:07x}", w.rng.below(1 << 28))
                    };
                    let index = w.rng.below(5) == 0;
                    let d = w.build(t, &repository, &["latest".to_owned(), second], index);
                    builds.push((t, d));
                    t += w.rng.between(5 * DAY, 15 * DAY);
                }
                let per_day = 1 + w.rng.below(4) as i64;
                let mut day = start;
                while day < end {
                    for _ in 0..per_day {
                        let ts = day + w.rng.between(0, DAY);
                        if ts < end && builds.first().is_some_and(|b| b.0 < ts) {
                            w.pull(ts, &repository, None, Some("latest"));
                        }
                    }
                    // Now and then a rollback pulls an older build by digest.
                    if w.rng.below(20) == 0 && builds.len() > 1 {
                        let i = w.rng.below(builds.len() as u64 - 1) as usize;
                        let (pushed, d) = builds[i].clone();
                        let ts = day + w.rng.between(0, DAY);
                        if pushed < ts && ts < end {
                            w.pull(ts, &repository, Some(&d), None);
                        }
                    }
                    day += DAY;
                }
            }
            1 => {
                let pushed = start + w.rng.between(0, 3 * DAY);
                let tag = format!("2024.{:02}", 1 + r % 12);
                let d = w.build(pushed, &repository, std::slice::from_ref(&tag), false);
                let hour = w.rng.between(0, 6) * 3_600;
                let mut month = start;
                while month < end {
                    let ts = month + hour + 120;
                    if ts > pushed && ts < end {
                        // The CronJob pulls by tag; the registry records the digest it served.
                        w.pull(ts, &repository, Some(&d), Some(&tag));
                    }
                    month += 30 * DAY;
                }
            }
            2 => {
                let mut t = start + w.rng.between(0, 10 * DAY);
                while t < end {
                    let tag = format!("build-{}", w.rng.below(100_000));
                    let d = w.build(t, &repository, &[tag], false);
                    let next = t + w.rng.between(30 * DAY, 60 * DAY);
                    let mut p = t + w.rng.between(DAY, 7 * DAY);
                    while p < next.min(end) {
                        w.pull(p, &repository, Some(&d), None);
                        p += w.rng.between(5 * DAY, 9 * DAY);
                    }
                    t = next;
                }
            }
            _ => {
                let mut t = start + w.rng.between(0, 20 * DAY);
                while t < end {
                    let tag = format!("pr-{}", w.rng.below(10_000));
                    let d = w.build(t, &repository, std::slice::from_ref(&tag), false);
                    for _ in 0..1 + w.rng.below(4) {
                        let ts = t + w.rng.between(60, 2 * DAY);
                        if ts < end {
                            w.pull(ts, &repository, Some(&d), Some(&tag));
                        }
                    }
                    let gone = t + 30 * DAY;
                    if w.rng.below(2) == 0 && gone < end {
                        w.delete(gone, &repository, &d);
                    }
                    t += w.rng.between(3 * DAY, 20 * DAY);
                }
            }
        }
    }
    w.events.sort_by_key(|e| e.ts);
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut summary = SynthSummary {
        images: w.images,
        ..SynthSummary::default()
    };
    for (n, e) in w.events.iter().enumerate() {
        match e.action {
            "push" => summary.pushes += 1,
            "pull" => summary.pulls += 1,
            _ => summary.deletes += 1,
        }
        writeln!(out, "{}", e.line(n as u64))?;
    }
    out.flush()?;
    Ok(summary)
}
