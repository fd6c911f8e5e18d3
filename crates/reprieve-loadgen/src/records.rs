//! Realistic object records built from a seed: what a caller of `ReuseScorer` would send.
//!
//! The mix follows the cohorts of `reprieve synth` (popular, one-off, dead, weekly, monthly, yearly-seasonal,
//! bulk-rescanned) so that histories range from none to a couple of thousand reads, with names that exercise
//! the naming features (size suffixes, dates, hashes, container digests, seasonal words), a storage class, an
//! owner for most objects, a few hard-rule objects (legal hold, retention, live references, too new) and prefix
//! activity for every object (without it the bundled model answers `OUT_OF_DOMAIN`). The same seed gives the same
//! records, so runs against different servers send identical requests.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reprieve_core::time::{DAY, HOUR, WEEK};
use reprieve_core::{AccessHistory, ObjectRecord, PrefixActivity, StorageClass, UnixSeconds};

/// The default scoring time: 2026-03-02T00:00:00Z.
pub const DEFAULT_AT: UnixSeconds = 1_772_409_600;

/// Longest history generated (reads listed individually).
pub const MAX_READS: usize = 2_000;

/// How an object's reads are laid out in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cohort {
    /// Log-uniform 1 to [`MAX_READS`] reads over the last year, denser recently.
    Popular,
    /// A few reads in the week after upload, then silence.
    OneOff,
    /// Never read.
    Dead,
    /// A small burst on the same weekday every week for a year.
    Weekly,
    /// A burst on the same day every 30 days for one to two years.
    Monthly,
    /// Reads only in a two-week season a year ago (and two years ago).
    Yearly,
    /// Read once per bulk re-scan of its prefix, every ~21 days.
    Rescan,
}

const COHORTS: [(Cohort, f64); 7] = [
    (Cohort::Popular, 0.30),
    (Cohort::OneOff, 0.15),
    (Cohort::Dead, 0.20),
    (Cohort::Weekly, 0.10),
    (Cohort::Monthly, 0.10),
    (Cohort::Yearly, 0.05),
    (Cohort::Rescan, 0.10),
];

const TENANTS: [&str; 3] = ["web-assets", "media-prod", "registry"];
const TOPS: [&str; 8] = [
    "cdn",
    "images",
    "uploads",
    "backups",
    "models",
    "reports",
    "tmp",
    "campaigns",
];
const DIRS: [&str; 10] = [
    "banners",
    "products/2023",
    "thumbs",
    "users/avatars",
    "christmas-2024",
    "legacy/old",
    "exports/daily",
    "snapshots",
    "halloween",
    "v2/assets",
];
const STEMS: [&str; 10] = [
    "banner_300x200",
    "hero",
    "IMG_20240513_1234",
    "backup-2023-01-01",
    "logo@2x",
    "report-final",
    "summer-sale",
    "weights-v1.2.3",
    "cover",
    "tmp_upload",
];
const EXTENSIONS: [&str; 10] = [
    "png",
    "jpg",
    "webp",
    "gif",
    "svg",
    "mp4",
    "tar.gz",
    "pdf",
    "safetensors",
    "qcow2",
];

fn pick_cohort(rng: &mut SmallRng) -> Cohort {
    let mut u: f64 = rng.random();
    for (c, share) in COHORTS {
        if u < share {
            return c;
        }
        u -= share;
    }
    Cohort::Popular
}

fn key(rng: &mut SmallRng, tenant: &str, i: usize) -> String {
    if tenant == "registry" {
        let digest: String = (0..4).map(|_| format!("{:016x}", rng.random::<u64>())).collect();
        let repo = ["app/api", "app/web", "jobs/monthly-report", "ml/trainer"]
            .choose(rng)
            .copied();
        return format!("{}@sha256:{digest}", repo.unwrap_or("app"));
    }
    let top = TOPS.choose(rng).copied().unwrap_or("cdn");
    let dir = DIRS.choose(rng).copied().unwrap_or("assets");
    let ext = EXTENSIONS.choose(rng).copied().unwrap_or("png");
    if rng.random_bool(0.2) {
        // Content-addressed name.
        return format!("{top}/{dir}/{:016x}{:08x}.{ext}", rng.random::<u64>(), i);
    }
    let stem = STEMS.choose(rng).copied().unwrap_or("file");
    format!("{top}/{dir}/{stem}-{i}.{ext}")
}

fn storage_class(rng: &mut SmallRng) -> StorageClass {
    let u: f64 = rng.random();
    match u {
        u if u < 0.55 => StorageClass::Standard,
        u if u < 0.65 => StorageClass::IntelligentTiering,
        u if u < 0.80 => StorageClass::StandardIa,
        u if u < 0.85 => StorageClass::GlacierIr,
        u if u < 0.90 => StorageClass::Glacier,
        u if u < 0.92 => StorageClass::DeepArchive,
        _ => StorageClass::Unspecified,
    }
}

fn log_uniform(rng: &mut SmallRng, lo: f64, hi: f64) -> f64 {
    (rng.random_range(lo.ln()..hi.ln())).exp()
}

/// Reads of one object of `cohort`, created at `created`, as seen at `at` (sorted, all before `at`).
fn reads(rng: &mut SmallRng, cohort: Cohort, created: UnixSeconds, at: UnixSeconds) -> Vec<UnixSeconds> {
    let span = (at - created).max(HOUR);
    let mut t: Vec<UnixSeconds> = match cohort {
        Cohort::Dead => Vec::new(),
        Cohort::Popular => {
            let n = log_uniform(rng, 1.0, MAX_READS as f64) as usize;
            let window = span.min(365 * DAY);
            // Squaring a uniform puts more reads near `at`.
            (0..n)
                .map(|_| {
                    let u: f64 = rng.random();
                    at - 1 - (u * u * window as f64) as i64
                })
                .collect()
        }
        Cohort::OneOff => {
            let n = rng.random_range(1..=5);
            (0..n).map(|_| created + rng.random_range(0..WEEK.min(span))).collect()
        }
        Cohort::Weekly => {
            let phase = rng.random_range(HOUR..WEEK);
            let burst = rng.random_range(1..=3);
            (0..52)
                .flat_map(|w| (0..burst).map(move |b| at - phase - w * WEEK - b * 600))
                .collect()
        }
        Cohort::Monthly => {
            let phase = rng.random_range(HOUR..30 * DAY);
            let months = rng.random_range(12..=24);
            let burst = rng.random_range(1..=10);
            (0..months)
                .flat_map(|m| (0..burst).map(move |b| at - phase - m * 30 * DAY - b * 60))
                .collect()
        }
        Cohort::Yearly => {
            let season = rng.random_range(0..14 * DAY);
            let n = rng.random_range(10..=30);
            let mut v: Vec<i64> = (0..n)
                .map(|_| at - 365 * DAY + rng.random_range(-7 * DAY..7 * DAY) + season / 2)
                .collect();
            if rng.random_bool(0.5) {
                v.extend((0..n).map(|_| at - 730 * DAY + rng.random_range(-7 * DAY..7 * DAY)));
            }
            v
        }
        Cohort::Rescan => {
            let phase = rng.random_range(HOUR..21 * DAY);
            (0..18).map(|k| at - phase - k * 21 * DAY).collect()
        }
    };
    t.retain(|&x| x >= created && x < at);
    t.sort_unstable();
    t
}

fn prefix_activity(rng: &mut SmallRng, at: UnixSeconds, max_objects: f64) -> PrefixActivity {
    let objects = log_uniform(rng, 1.0, max_objects) as u64;
    let read_30d = (objects as f64 * rng.random::<f64>() * 0.6) as u64;
    let reads_30d = read_30d * rng.random_range(1..=20);
    let bulk = rng.random_bool(0.15);
    PrefixActivity {
        objects,
        objects_read_30d: read_30d,
        reads_7d: reads_30d / 4,
        reads_30d,
        last_read: (read_30d > 0).then(|| at - rng.random_range(60..30 * DAY)),
        bulk_scan_days_128d: if bulk { rng.random_range(1..8) } else { 0 },
        last_bulk_scan: bulk.then(|| at - rng.random_range(DAY..120 * DAY)),
    }
}

/// `count` records for scoring at `at`, from `seed`.
pub fn generate(seed: u64, count: usize, at: UnixSeconds) -> Vec<ObjectRecord> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count).map(|i| one(&mut rng, i, at)).collect()
}

/// One record of a given cohort (benches pick histories of a known shape with it).
pub fn of_cohort(seed: u64, cohort: Cohort, at: UnixSeconds) -> ObjectRecord {
    let mut rng = SmallRng::seed_from_u64(seed);
    build(&mut rng, 0, cohort, at)
}

fn one(rng: &mut SmallRng, i: usize, at: UnixSeconds) -> ObjectRecord {
    let cohort = pick_cohort(rng);
    build(rng, i, cohort, at)
}

fn build(rng: &mut SmallRng, i: usize, cohort: Cohort, at: UnixSeconds) -> ObjectRecord {
    let tenant = TENANTS.choose(rng).copied().unwrap_or("web-assets");
    // 8% were uploaded in the last 30 days (TOO_NEW); the others up to four years ago.
    let age = if rng.random_bool(0.08) {
        rng.random_range(HOUR..30 * DAY)
    } else {
        rng.random_range(31 * DAY..1_460 * DAY)
    };
    let created = at - age;
    let accesses = reads(rng, cohort, created, at);
    let key = key(rng, tenant, i);
    ObjectRecord {
        key,
        tenant: tenant.to_owned(),
        size: Some(log_uniform(rng, 1e3, 5e9) as u64),
        created: Some(created),
        modified: Some(created + rng.random_range(0..=age / 10)),
        content_type: None,
        storage_class: storage_class(rng),
        owner: rng
            .random_bool(0.95)
            .then(|| format!("team-{}", rng.random_range(0..40))),
        legal_hold: rng.random_bool(0.01),
        retain_until: rng.random_bool(0.01).then(|| at + 365 * DAY),
        live_references: if rng.random_bool(0.01) {
            rng.random_range(1..=3)
        } else {
            0
        },
        history: AccessHistory {
            accesses,
            summary: None,
            // Access logging has been on for 400 days (or since the object was created, if later).
            complete_since: Some((at - 400 * DAY).max(created)),
        },
        parent_activity: Some(prefix_activity(rng, at, 5_000.0)),
        top_activity: Some(prefix_activity(rng, at, 500_000.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_valid_and_varied() {
        let records = generate(7, 2_000, DEFAULT_AT);
        let limits = reprieve_core::RecordLimits {
            max_key_bytes: 4096,
            max_history_len: 100_000,
            max_future_skew_secs: 300,
        };
        for r in &records {
            assert_eq!(r.validate(DEFAULT_AT, &limits), Ok(()), "{r:?}");
        }
        let lens: Vec<usize> = records.iter().map(|r| r.history.accesses.len()).collect();
        assert!(lens.contains(&0));
        assert!(lens.iter().any(|&n| n > 500));
        assert_eq!(generate(7, 2_000, DEFAULT_AT), records, "same seed, same records");
    }
}
