//! The generator's knobs and their validation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SynthError;

/// Longest access log accepted, in days (event times are stored as 32-bit offsets from `start`).
pub const MAX_DAYS: u32 = 3_650;

/// Which file format [`crate::generate`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// `inventory.csv` and `events.csv`.
    #[default]
    Csv,
    /// `inventory.parquet` and `events.parquet`.
    Parquet,
}

impl OutputFormat {
    /// File extension of the data files (`csv` or `parquet`).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for OutputFormat {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "parquet" | "pq" => Ok(Self::Parquet),
            other => Err(SynthError::config(
                "format",
                format!("unknown format {other:?}; expected csv or parquet"),
            )),
        }
    }
}

/// Every knob of the generator. `Default` gives a 10 000-object, 60-day, 3-tenant inventory starting
/// 2026-01-01T00:00:00Z. The cohort shares (`share_one_off` ... `share_rescan`) must sum to at most 1; the rest of
/// the objects are `popular`. See the crate documentation for what each cohort does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Number of objects in the inventory (at least 1, at most `u32::MAX`).
    pub objects: u64,
    /// Length of the access log in days (1 to 3650): reads lie in `[start, start + days * 86400)`.
    pub days: u32,
    /// Start of the access log, Unix seconds (UTC).
    pub start: i64,
    /// Seed of the random generator: the same config gives byte-identical files.
    pub seed: u64,
    /// Format of the inventory and events files.
    pub format: OutputFormat,
    /// Number of tenants (buckets); top-level prefixes are dealt round-robin to tenants.
    pub tenants: u32,
    /// Number of top-level prefixes; `None` picks `objects / 2000` clamped to `[4, 500]`.
    pub prefixes: Option<u32>,
    /// Scale of the `popular` cohort: the mean, over popular objects, of their read rate (reads/day) at upload
    /// time. Per-object rates are Zipf-distributed around it and decay with age (`decay_half_life_days`).
    pub mean_reads_per_day: f64,
    /// Exponent `s` of the Zipf law over popular objects: the object of popularity rank `r` gets weight `r^-s`.
    pub zipf_exponent: f64,
    /// Half-life, in days of object age, of a popular object's read rate. The rate decays towards a floor of
    /// 10% of its upload-time rate (old popular objects stay warm, not dead).
    pub decay_half_life_days: f64,
    /// Share of `one_off` objects: read a few times in the first days after upload, then never.
    pub share_one_off: f64,
    /// Share of `dead` objects: never read in the log.
    pub share_dead: f64,
    /// Share of `monthly` objects: a burst of reads on the same day and hour every 30 days.
    pub share_monthly: f64,
    /// Share of `weekly` objects: a small burst of reads on the same weekday and hour every 7 days.
    pub share_weekly: f64,
    /// Share of `yearly` (seasonal) objects: reads only during a ~2-week season once a year (christmas,
    /// halloween, summer, ...); most are silent in a short log.
    pub share_yearly: f64,
    /// Share of `rescan` objects: otherwise quiet objects in dedicated sub-prefixes that are bulk re-scanned,
    /// the whole sub-prefix read within one hour, every `rescan_interval_days` +- `rescan_jitter_days`.
    pub share_rescan: f64,
    /// Mean days between two bulk re-scans of a rescan sub-prefix (at least 1).
    pub rescan_interval_days: f64,
    /// Each re-scan interval is `rescan_interval_days` plus a uniform jitter in `[-j, +j]` days (0 to
    /// `rescan_interval_days - 1`).
    pub rescan_jitter_days: f64,
    /// Share of objects uploaded during the log window (the others were created up to 3 years before `start`).
    pub share_new_uploads: f64,
    /// Share of objects under legal hold.
    pub share_legal_hold: f64,
    /// Share of objects with a retention date (`retain_until`) after the end of the log.
    pub share_retention: f64,
    /// Share of objects with live references (1 to 3) from manifests, CronJobs or a CMS.
    pub share_live_reference: f64,
    /// Share of objects with no known owner (empty `owner`).
    pub share_unknown_owner: f64,
    /// In `[0, 1]`: how strongly naming tokens correlate with the cohort. 0 draws every name from one
    /// cohort-independent mixture; 1 always uses the cohort's own name styles.
    pub name_signal: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            objects: 10_000,
            days: 60,
            start: 1_767_225_600,
            seed: 42,
            format: OutputFormat::Csv,
            tenants: 3,
            prefixes: None,
            mean_reads_per_day: 0.3,
            zipf_exponent: 1.1,
            decay_half_life_days: 30.0,
            share_one_off: 0.15,
            share_dead: 0.25,
            share_monthly: 0.05,
            share_weekly: 0.05,
            share_yearly: 0.05,
            share_rescan: 0.10,
            rescan_interval_days: 21.0,
            rescan_jitter_days: 2.0,
            share_new_uploads: 0.15,
            share_legal_hold: 0.01,
            share_retention: 0.01,
            share_live_reference: 0.01,
            share_unknown_owner: 0.05,
            name_signal: 0.5,
        }
    }
}

impl SynthConfig {
    /// The number of top-level prefixes actually used (`prefixes`, or the default derived from `objects`).
    pub fn effective_prefixes(&self) -> u32 {
        self.prefixes
            .unwrap_or_else(|| (self.objects / 2_000).clamp(4, 500) as u32)
    }

    /// End of the access log (exclusive), Unix seconds.
    pub fn end(&self) -> i64 {
        self.start + i64::from(self.days) * 86_400
    }

    /// Checks every knob; the error names the first offending one.
    pub fn validate(&self) -> Result<(), SynthError> {
        if self.objects == 0 || self.objects > u64::from(u32::MAX) {
            return Err(SynthError::config(
                "objects",
                format!("is {}, must be between 1 and {}", self.objects, u32::MAX),
            ));
        }
        if self.days == 0 || self.days > MAX_DAYS {
            return Err(SynthError::config(
                "days",
                format!("is {}, must be between 1 and {MAX_DAYS}", self.days),
            ));
        }
        // 1990-01-01 .. 2150-01-01: anything outside is almost surely milliseconds or a typo.
        if !(631_152_000..=5_680_281_600).contains(&self.start) {
            return Err(SynthError::config(
                "start",
                format!("{} is not a plausible Unix time in seconds (1990..2150)", self.start),
            ));
        }
        if self.tenants == 0 || self.tenants > 10_000 {
            return Err(SynthError::config(
                "tenants",
                format!("is {}, must be between 1 and 10000", self.tenants),
            ));
        }
        if let Some(p) = self.prefixes
            && (p == 0 || p > 1_000_000)
        {
            return Err(SynthError::config(
                "prefixes",
                format!("is {p}, must be between 1 and 1000000"),
            ));
        }
        let finite_in = |knob: &'static str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(SynthError::config(knob, format!("is {v}, must be in [{lo}, {hi}]")))
            }
        };
        finite_in("mean_reads_per_day", self.mean_reads_per_day, 0.0, 1e6)?;
        finite_in("zipf_exponent", self.zipf_exponent, 0.0, 10.0)?;
        if !(self.decay_half_life_days.is_finite() && self.decay_half_life_days > 0.0) {
            return Err(SynthError::config(
                "decay_half_life_days",
                format!("is {}, must be positive", self.decay_half_life_days),
            ));
        }
        finite_in("rescan_interval_days", self.rescan_interval_days, 1.0, 3650.0)?;
        finite_in(
            "rescan_jitter_days",
            self.rescan_jitter_days,
            0.0,
            (self.rescan_interval_days - 1.0).max(0.0),
        )?;
        let shares = [
            ("share_one_off", self.share_one_off),
            ("share_dead", self.share_dead),
            ("share_monthly", self.share_monthly),
            ("share_weekly", self.share_weekly),
            ("share_yearly", self.share_yearly),
            ("share_rescan", self.share_rescan),
        ];
        for (knob, v) in shares {
            finite_in(knob, v, 0.0, 1.0)?;
        }
        let total: f64 = shares.iter().map(|(_, v)| v).sum();
        if total > 1.0 + 1e-9 {
            return Err(SynthError::config(
                "share_one_off+share_dead+share_monthly+share_weekly+share_yearly+share_rescan",
                format!("the cohort shares sum to {total}, must be at most 1"),
            ));
        }
        for (knob, v) in [
            ("share_new_uploads", self.share_new_uploads),
            ("share_legal_hold", self.share_legal_hold),
            ("share_retention", self.share_retention),
            ("share_live_reference", self.share_live_reference),
            ("share_unknown_owner", self.share_unknown_owner),
            ("name_signal", self.name_signal),
        ] {
            finite_in(knob, v, 0.0, 1.0)?;
        }
        Ok(())
    }
}
