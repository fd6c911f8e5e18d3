//! A seeded generator of a synthetic object inventory and its access log, in Reprieve's canonical formats.
//!
//! [`generate`] writes three files into an output directory:
//!
//! - `inventory.csv` (or `.parquet`): one row per object, columns
//!   `tenant,key,size,created,modified,storage_class,owner,legal_hold,retain_until,live_references,content_type,cohort`.
//!   Times are Unix seconds; `retain_until` and `owner` are empty (null in Parquet) when absent; `legal_hold` is
//!   `true`/`false`; `storage_class` uses S3 names; `cohort` is the generator's ground-truth label.
//! - `events.csv` (or `.parquet`): one row per read, columns `ts,key,size,tenant,op`, sorted by `ts` (ties by
//!   object), `op` always `GET`, `size` the object's size. Every event's `(tenant, key)` is in the inventory;
//!   keys are unique (across tenants too). Parquet types: `ts` Int64, `size` UInt64, strings otherwise;
//!   inventory `created`/`modified`/`retain_until` Int64, `live_references` UInt32, `legal_hold` Boolean.
//! - `synth.json`: `{"config": ..., "summary": ...}` (file names in the summary are relative to the directory).
//!
//! The same [`SynthConfig`] gives byte-identical files on the same platform (the generator is `rand`'s `SmallRng`
//! seeded per object, which differs between 32- and 64-bit targets; the thread count does not matter).
//!
//! Speed: 1M objects / 2.6M events take about 7 s (CSV) or 8.5 s (Parquet) on 2 cores even in the debug build
//! (`examples/synth_bench.rs`, test `million_objects` with `--ignored`).
//!
//! # Layout of the inventory
//!
//! Keys look like `{top}/{sub}/{name}.{ext}` (`cdn/batch004/hero-k3x9a2b_300x200.jpg`). Each top-level prefix
//! has a theme (images 70%, video 12%, documents 9%, backups 4%, model weights 3%, VM images 2%) that decides
//! its extensions and log-normal sizes (images ~20 KB-8 MB around 100-400 KB; video tens of MB; backups, disk
//! images and model weights GBs), a tenant (round-robin), and an owning team. Objects fall into ~200-object
//! sub-prefixes. `created` is uniform in the log window for `share_new_uploads` of the objects, else uniform over
//! the 3 years before `start`; 10% of old objects were modified later (before `start`). Storage classes depend
//! on age (STANDARD/INTELLIGENT_TIERING under 30 days; then also STANDARD_IA, and GLACIER_IR from 90 days).
//! GLACIER and DEEP_ARCHIVE are given only to old `dead` and `one_off` objects (a read would need a restore).
//! Legal hold, retention (`retain_until` 30 days to 3 years after the log's end), live references (1-3) and an
//! unknown owner are independent draws with their shares, independent of the cohort.
//!
//! # Cohorts (exact counts from the shares, shuffled over objects)
//!
//! - `popular` (the rest): a Poisson process whose upload-time rate is Zipf-distributed over the cohort (rank `r`
//!   gets `r^-zipf_exponent`, scaled so the cohort mean is `mean_reads_per_day`) and decays with age, halving
//!   every `decay_half_life_days` towards a floor of 10% of the upload-time rate. Zipf is heavy-tailed: most
//!   "popular" objects are read rarely, a few very often.
//! - `one_off`: 1 + Poisson(2) reads at upload time plus an exponential delay (mean 12 h, at most 7 days), then
//!   never. Objects uploaded long before `start` therefore show no reads in the log.
//! - `dead`: never read.
//! - `monthly`: a job at a fixed phase (day and hour) of a 30-day period reads the object 1 + Poisson(3) times
//!   within 2 hours.
//! - `weekly`: the same with a 7-day period, 1 + Poisson(1) reads within an hour.
//! - `yearly`: one season per object (valentines Feb 1, easter Mar 25, summer Jun 15, backtoschool Aug 15,
//!   halloween Oct 17, blackfriday Nov 18, christmas Dec 8, newyear Dec 26; 10-18 days long); during its season,
//!   0.5-3.5 reads/day, no reads outside it. In a short log most yearly objects look dead.
//! - `rescan`: placed in dedicated ~150-object sub-prefixes (no other cohort lives there). Each such sub-prefix
//!   is bulk re-scanned: every object in it read once within one hour of the scan start; the first scan is
//!   uniform in the first `rescan_interval_days` of the log, then every `rescan_interval_days` +- uniform
//!   `rescan_jitter_days`. No other reads.
//!
//! No object is read before its `created` time, and all reads lie in `[start, start + days * 86400)`.
//!
//! # Names and cohorts
//!
//! With probability `name_signal` a name is drawn from its cohort's styles, otherwise from one neutral mixture
//! (plain 40%, dated 12%, hash 8%, size suffix 8%, and 4-5% each of tmp, backup, old, thumb, seasonal, latest,
//! semver). Cohort styles: `dead` tmp/backup/old/hash/`_300x200`-style size suffix (90%); `one_off`
//! tmp/hash/size suffix/dated (85%); `yearly` its own season's word and a year (92%); `popular`
//! latest/current/stable, thumb_, semver or plain; `monthly` dated, plain or latest; `weekly` plain, latest or
//! dated; `rescan` plain, dated or hash. At `name_signal = 0` names are independent of the cohort. Every name
//! ends in a unique 7-character id (a letter and six base-36 characters), which keeps keys unique.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod config;
mod names;
mod plan;
mod write;

pub use config::{MAX_DAYS, OutputFormat, SynthConfig};

/// Ground-truth behaviour of a generated object (the `cohort` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    Popular,
    OneOff,
    Dead,
    Monthly,
    Weekly,
    Yearly,
    Rescan,
}

impl Cohort {
    /// Every cohort, in a fixed order.
    pub const ALL: [Cohort; 7] = [
        Self::Popular,
        Self::OneOff,
        Self::Dead,
        Self::Monthly,
        Self::Weekly,
        Self::Yearly,
        Self::Rescan,
    ];

    /// The label written in the `cohort` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Popular => "popular",
            Self::OneOff => "one_off",
            Self::Dead => "dead",
            Self::Monthly => "monthly",
            Self::Weekly => "weekly",
            Self::Yearly => "yearly",
            Self::Rescan => "rescan",
        }
    }
}

/// Totals of one cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CohortSummary {
    pub objects: u64,
    pub events: u64,
    /// Sum of the objects' sizes.
    pub bytes: u64,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SynthSummary {
    pub objects: u64,
    pub events: u64,
    /// Sum of all objects' sizes.
    pub bytes: u64,
    /// Per cohort label (`popular`, `one_off`, ...); every cohort is listed, possibly with zeros.
    pub by_cohort: BTreeMap<String, CohortSummary>,
    /// Start of the access log (inclusive), Unix seconds.
    pub start: i64,
    /// End of the access log (exclusive), Unix seconds.
    pub end: i64,
    /// Files written: inventory, events, synth.json.
    pub files: Vec<PathBuf>,
}

/// Why [`generate`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A knob has an invalid value; `knob` is its field name in [`SynthConfig`].
    #[error("invalid synth config: {knob} {message}")]
    Config { knob: &'static str, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: writing parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("{}: writing JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl SynthError {
    pub(crate) fn config(knob: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            knob,
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn parquet(path: &Path, source: polars::error::PolarsError) -> Self {
        Self::Parquet {
            path: path.to_owned(),
            source,
        }
    }

    /// The offending knob of a [`SynthError::Config`].
    pub fn knob(&self) -> Option<&'static str> {
        match self {
            Self::Config { knob, .. } => Some(knob),
            _ => None,
        }
    }
}

/// Generates the inventory and access log described by `config` into `out_dir` (created if missing) and returns
/// what was written. Validates `config` first.
pub fn generate(config: &SynthConfig, out_dir: &Path) -> Result<SynthSummary, SynthError> {
    config.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| SynthError::io(out_dir, e))?;
    let plan = plan::build_plan(config);

    // Events per object (independent seeded streams, so the split over threads does not change the result),
    // packed as (ts - start) << 32 | object index and sorted.
    let n = plan.objects.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, 4)
        .min(n.div_ceil(10_000));
    let per = n.div_ceil(threads);
    let mut parts: Vec<(Vec<u64>, Vec<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let plan = &plan;
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut counts = Vec::with_capacity(per);
                    for i in t * per..((t + 1) * per).min(n) {
                        counts.push(plan::object_events(plan, config, i, &mut out));
                    }
                    (out, counts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let total: usize = parts.iter().map(|(e, _)| e.len()).sum();
    let mut events: Vec<u64> = Vec::with_capacity(total);
    let mut event_counts: Vec<u64> = Vec::with_capacity(n);
    for (e, c) in parts.iter_mut() {
        events.append(e);
        event_counts.append(c);
    }
    drop(parts);
    events.sort_unstable();

    let mut by_cohort: BTreeMap<String, CohortSummary> = Cohort::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), CohortSummary::default()))
        .collect();
    let mut bytes = 0u64;
    for (o, &k) in plan.objects.iter().zip(&event_counts) {
        if let Some(s) = by_cohort.get_mut(o.cohort.as_str()) {
            s.objects += 1;
            s.events += k;
            s.bytes += o.size;
        }
        bytes += o.size;
    }

    let ext = config.format.extension();
    let inventory_path = out_dir.join(format!("inventory.{ext}"));
    let events_path = out_dir.join(format!("events.{ext}"));
    let json_path = out_dir.join("synth.json");
    match config.format {
        OutputFormat::Csv => {
            write::write_inventory_csv(&plan, &inventory_path)?;
            write::write_events_csv(&plan, &events, &events_path)?;
        }
        OutputFormat::Parquet => {
            write::write_inventory_parquet(&plan, &inventory_path)?;
            write::write_events_parquet(&plan, &events, &events_path)?;
        }
    }

    let mut summary = SynthSummary {
        objects: n as u64,
        events: events.len() as u64,
        bytes,
        by_cohort,
        start: plan.start,
        end: plan.end,
        files: [&inventory_path, &events_path, &json_path]
            .iter()
            .map(|p| p.file_name().map(PathBuf::from).unwrap_or_default())
            .collect(),
    };
    #[derive(Serialize)]
    struct Manifest<'a> {
        config: &'a SynthConfig,
        summary: &'a SynthSummary,
    }
    let json = serde_json::to_vec_pretty(&Manifest {
        config,
        summary: &summary,
    })
    .map_err(|source| SynthError::Json {
        path: json_path.clone(),
        source,
    })?;
    std::fs::write(&json_path, json).map_err(|e| SynthError::io(&json_path, e))?;
    summary.files = vec![inventory_path, events_path, json_path];
    Ok(summary)
}
