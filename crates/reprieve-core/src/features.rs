//! The feature schema and the one feature extractor that server, batch scorer and trainer all share.
//!
//! A [`FeatureVector`] is a fixed-length array of finite `f64`s in [`Feature`] order. The schema has a version and
//! a hash of its names; a model artifact records both and is refused by code with another schema. Every value is
//! bounded (log-scaled counts and durations, fractions, 0/1 flags) so that any input, including an empty history,
//! timestamps after the scoring time, a zero size or a million reads, gives finite numbers.
//!
//! ```
//! use reprieve_core::{ObjectRecord, features::{extract, Feature}};
//! let mut record = ObjectRecord::with_key("cdn/banners/christmas_300x200.png");
//! record.history.accesses = vec![1_000, 2_000];
//! let v = extract(&record, 10_000);
//! assert_eq!(v.get(Feature::SeasonalWord), 1.0);
//! assert!(v.values().iter().all(|x| x.is_finite()));
//! ```

use serde::{Deserialize, Serialize};

use crate::history::{HistoryStats, RECENT_CAPACITY};
use crate::naming::{MediaKind, name_signals, tag_shape};
use crate::record::{ImageFacts, ObjectRecord, PrefixActivity, StorageClass};
use crate::time::{DAY, HOUR, UnixSeconds, year_of};

/// Version of the feature definitions. Bump it whenever a definition changes, not only when names change.
pub const FEATURE_SCHEMA_VERSION: &str = "reprieve-features-v3";

macro_rules! feature_schema {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )+) => {
        /// One feature of the schema; `as usize` is its index in a [`FeatureVector`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum Feature {
            $( $(#[$doc])* $variant, )+
        }

        impl Feature {
            /// Every feature, in vector order.
            pub const ALL: &'static [Feature] = &[ $( Feature::$variant, )+ ];

            /// The feature's stable name (as stored in artifacts and shown in contributions).
            pub const fn name(self) -> &'static str {
                match self { $( Feature::$variant => $name, )+ }
            }
        }

        /// Names of all features, in vector order.
        pub const FEATURE_NAMES: &[&str] = &[ $( $name, )+ ];
    };
}

feature_schema! {
    /// log1p of the object's age in days (from creation, else first read, else start of coverage).
    AgeDaysLog => "age_days_log",
    /// 1 if the creation time is known.
    AgeKnown => "age_known",
    /// log1p of days since the last modification (age when unknown).
    ModifiedDaysLog => "modified_days_log",
    /// log1p of days since the last read; for a never-read object, days of observed silence.
    SinceLastReadDaysLog => "since_last_read_days_log",
    /// 1 if no read is known before the scoring time.
    NeverRead => "never_read",
    /// log1p of days the history has been complete for (0 when unknown).
    CoverageDaysLog => "coverage_days_log",
    Reads1dLog => "reads_1d_log",
    Reads7dLog => "reads_7d_log",
    Reads30dLog => "reads_30d_log",
    Reads90dLog => "reads_90d_log",
    Reads365dLog => "reads_365d_log",
    ReadsTotalLog => "reads_total_log",
    /// Fraction of the last 7 / 30 / 128 days with at least one read.
    ActiveDays7 => "active_days_7_frac",
    ActiveDays30 => "active_days_30_frac",
    ActiveDays128 => "active_days_128_frac",
    /// Fraction of the last 52 / 128 weeks with at least one read.
    ActiveWeeks52 => "active_weeks_52_frac",
    ActiveWeeks128 => "active_weeks_128_frac",
    /// Number of gaps between the most recent reads, over its maximum.
    GapCountFrac => "gap_count_frac",
    /// log1p of the mean / last / largest gap between recent reads, in days.
    GapMeanDaysLog => "gap_mean_days_log",
    GapLastDaysLog => "gap_last_days_log",
    GapMaxDaysLog => "gap_max_days_log",
    /// Coefficient of variation of the recent gaps (capped at 10).
    GapCv => "gap_cv",
    /// log1p of exponentially decayed read counts with half-lives 1, 7, 30 and 180 days.
    Decayed1dLog => "decayed_1d_log",
    Decayed7dLog => "decayed_7d_log",
    Decayed30dLog => "decayed_30d_log",
    Decayed180dLog => "decayed_180d_log",
    /// ln((time since last read) / (median recent gap)), in [-8, 8]; 0 with fewer than two gaps. Large: overdue.
    OverdueLogRatio => "overdue_log_ratio",
    /// 1 / (1 + gap CV) with at least three gaps, else 0: how clock-like the reads are.
    PeriodRegularity => "period_regularity",
    /// Share of read days in the last 9 weeks that had a read exactly a week earlier.
    WeeklyLagMatch => "weekly_lag_match",
    /// Share of read days in the last 3 months that had a read 28-31 days earlier.
    MonthlyLagMatch => "monthly_lag_match",
    /// 1 if there were reads in the two weeks that followed this date a month ago.
    MonthAgoUpcoming => "month_ago_upcoming",
    /// Share of read weeks in the last 76 that had a read 52 weeks earlier.
    YearlyLagMatch => "yearly_lag_match",
    /// 1 if there were reads in the five weeks that followed this date a year ago (two years ago).
    YearAgoUpcoming => "year_ago_upcoming",
    TwoYearsAgoUpcoming => "two_years_ago_upcoming",
    /// 1 if a schedule (a CronJob naming the image) will run it; then log1p of its period and of the days until
    /// its next run. 0 for objects without a schedule.
    ScheduledRun => "scheduled_run",
    ScheduledPeriodDaysLog => "scheduled_period_days_log",
    ScheduledNextRunDaysLog => "scheduled_next_run_days_log",
    MediaImage => "media_image",
    MediaVector => "media_vector",
    MediaVideo => "media_video",
    MediaDocument => "media_document",
    MediaArchive => "media_archive",
    MediaDiskImage => "media_disk_image",
    MediaModel => "media_model",
    MediaWeb => "media_web",
    MediaData => "media_data",
    MediaContainer => "media_container",
    MediaUnknown => "media_unknown",
    /// log1p of the directory depth and of the name length.
    DepthLog => "depth_log",
    NameLenLog => "name_len_log",
    NameTemp => "name_temp",
    NameBackup => "name_backup",
    NameOld => "name_old",
    NameThumb => "name_thumb",
    NameSizeSuffix => "name_size_suffix",
    NameDate => "name_date",
    /// log1p of years between the year in the name and the scoring year (0 without a year, or a future year).
    NameYearAgeLog => "name_year_age_log",
    NameHashLike => "name_hash_like",
    NameSemver => "name_semver",
    NameLatest => "name_latest",
    SeasonalWord => "name_seasonal",
    /// The name's seasonal word points at a date at most 60 days ahead or 7 days past (its campaign is on).
    NameSeasonUpcoming => "name_season_upcoming",
    /// Container images only (0 for other objects): log1p of the number of tags on the digest, and whether any
    /// tag is a release version, a `latest`-like pointer, a branch build, a commit hash, a build number, a date.
    TagCountLog => "image_tag_count_log",
    TagSemver => "image_tag_semver",
    TagLatest => "image_tag_latest",
    TagBranch => "image_tag_branch",
    TagShaLike => "image_tag_sha_like",
    TagBuildNumber => "image_tag_build_number",
    TagDate => "image_tag_date",
    /// log1p of days since the newest tag was set on the digest (0 when untagged).
    NewestTagDaysLog => "image_newest_tag_days_log",
    /// Share of the digest's pulls made by digest rather than by tag (0 without pulls): pinned consumers.
    PullsByDigestShare => "image_pulls_by_digest_share",
    /// 1 if the manifest is an image index (multi-arch).
    ImageIndex => "image_index",
    /// log1p of the size in bytes (0 when unknown) and whether it is known.
    SizeLog => "size_log",
    SizeKnown => "size_known",
    /// Storage tier flags: infrequent-access tiers, archive tiers, unknown.
    StorageInfrequent => "storage_infrequent",
    StorageArchive => "storage_archive",
    StorageUnknown => "storage_unknown",
    ParentKnown => "parent_known",
    ParentObjectsLog => "parent_objects_log",
    ParentReadShare30d => "parent_read_share_30d",
    ParentReads7dLog => "parent_reads_7d_log",
    ParentReads30dLog => "parent_reads_30d_log",
    ParentSinceReadDaysLog => "parent_since_read_days_log",
    ParentBulkDaysFrac => "parent_bulk_days_frac",
    ParentSinceBulkDaysLog => "parent_since_bulk_days_log",
    TopKnown => "top_known",
    TopObjectsLog => "top_objects_log",
    TopReadShare30d => "top_read_share_30d",
    TopReads7dLog => "top_reads_7d_log",
    TopReads30dLog => "top_reads_30d_log",
    TopSinceReadDaysLog => "top_since_read_days_log",
    TopBulkDaysFrac => "top_bulk_days_frac",
    TopSinceBulkDaysLog => "top_since_bulk_days_log",
}

/// The features that describe the object's prefixes (parent and top-level): all zero when the caller gives no
/// prefix activity.
pub const PREFIX_FEATURES: [Feature; 16] = [
    Feature::ParentKnown,
    Feature::ParentObjectsLog,
    Feature::ParentReadShare30d,
    Feature::ParentReads7dLog,
    Feature::ParentReads30dLog,
    Feature::ParentSinceReadDaysLog,
    Feature::ParentBulkDaysFrac,
    Feature::ParentSinceBulkDaysLog,
    Feature::TopKnown,
    Feature::TopObjectsLog,
    Feature::TopReadShare30d,
    Feature::TopReads7dLog,
    Feature::TopReads30dLog,
    Feature::TopSinceReadDaysLog,
    Feature::TopBulkDaysFrac,
    Feature::TopSinceBulkDaysLog,
];

/// Number of features in the schema.
pub const FEATURE_COUNT: usize = FEATURE_NAMES.len();

/// Identity of the feature schema, stored in model artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSchema {
    pub version: String,
    /// FNV-1a 64 of the version and the names, hex.
    pub hash: String,
    pub names: Vec<String>,
}

impl FeatureSchema {
    /// The schema this code computes.
    pub fn current() -> Self {
        Self {
            version: FEATURE_SCHEMA_VERSION.to_string(),
            hash: schema_hash(FEATURE_SCHEMA_VERSION, FEATURE_NAMES),
            names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn schema_hash(version: &str, names: &[&str]) -> String {
    let mut h = crate::hash::Fnv64::new();
    h.write(version.as_bytes());
    for n in names {
        h.write(&[0]);
        h.write(n.as_bytes());
    }
    format!("{:016x}", h.finish())
}

/// The features of one object at one scoring time.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVector([f64; FEATURE_COUNT]);

impl FeatureVector {
    pub fn values(&self) -> &[f64; FEATURE_COUNT] {
        &self.0
    }

    /// A vector read back from storage (an audit record, a training export): `None` unless `values` holds exactly
    /// [`FEATURE_COUNT`] finite numbers in schema order.
    pub fn from_values(values: &[f64]) -> Option<FeatureVector> {
        let array: [f64; FEATURE_COUNT] = values.try_into().ok()?;
        array.iter().all(|v| v.is_finite()).then_some(FeatureVector(array))
    }

    pub fn get(&self, f: Feature) -> f64 {
        self.0[f as usize]
    }

    /// Whether the object was read in the 30 days before the scoring time: the recently active population, where
    /// reuse is common and the hard decisions are. Models choose its thresholds on it alone.
    pub fn recently_read(&self) -> bool {
        self.get(Feature::Reads30dLog) > 0.0
    }

    /// Whether anything suggests a periodic or seasonal use: a seasonal word in the name, reads that line up with a
    /// week, month or year ago, or a schedule that runs the object. Such objects look idle between their uses, which
    /// is where an idle-time rule deletes them; models choose their thresholds on them alone.
    pub fn periodic_signal(&self) -> bool {
        [
            Feature::SeasonalWord,
            Feature::WeeklyLagMatch,
            Feature::MonthlyLagMatch,
            Feature::MonthAgoUpcoming,
            Feature::YearlyLagMatch,
            Feature::YearAgoUpcoming,
            Feature::TwoYearsAgoUpcoming,
            Feature::ScheduledRun,
        ]
        .iter()
        .any(|&f| self.get(f) > 0.0)
    }

    /// The same vector as if the record had carried no prefix activity (what a gRPC caller that does not know
    /// its prefixes sends). Training uses it so that models also learn to score such objects.
    pub fn without_prefix_activity(&self) -> FeatureVector {
        let mut v = self.clone();
        for f in PREFIX_FEATURES {
            v.0[f as usize] = 0.0;
        }
        v
    }

    fn set(&mut self, f: Feature, v: f64) {
        // Non-finite values cannot arise from the definitions below; this keeps the guarantee if one changes.
        self.0[f as usize] = if v.is_finite() { v } else { 0.0 };
    }

    fn flag(&mut self, f: Feature, on: bool) {
        self.0[f as usize] = if on { 1.0 } else { 0.0 };
    }
}

fn days(secs: i64) -> f64 {
    secs.max(0) as f64 / DAY as f64
}

fn log_days(secs: i64) -> f64 {
    // ln_1p(0) is 0: no need to call it for an empty duration. A whole number of days `d` (a coverage set to a
    // day, reads on a schedule whole days apart) is exactly `d` as a float, whose `ln_1p` the count table holds.
    if secs <= 0 {
        0.0
    } else if secs % DAY == 0 && secs < SMALL_COUNTS as i64 * DAY {
        small_count_logs()[(secs / DAY) as usize]
    } else {
        days(secs).ln_1p()
    }
}

/// Lead time before a seasonal date during which its assets are expected in use, and the tail after it.
const SEASON_LEAD_DAYS: i64 = 60;
const SEASON_TAIL_DAYS: i64 = 7;

/// Whether `at` lies in `[date - lead, date + tail]` for the (month, day) `anchor` in some year.
fn season_upcoming((month, day): (u8, u8), at: UnixSeconds) -> bool {
    let year = year_of(at);
    (year - 1..=year + 1).any(|y| {
        let date = crate::time::days_from_civil(y, u32::from(month), u32::from(day)) * DAY;
        (date - SEASON_LEAD_DAYS * DAY..=date + SEASON_TAIL_DAYS * DAY).contains(&at)
    })
}

/// Counts below this take `ln_1p` from a table.
const SMALL_COUNTS: usize = 1024;

/// `ln_1p(n)` for `n < SMALL_COUNTS`, filled on first use by `ln_1p` itself, so a lookup equals the call.
static LOG_SMALL_COUNTS: std::sync::OnceLock<Box<[f64; SMALL_COUNTS]>> = std::sync::OnceLock::new();

fn small_count_logs() -> &'static [f64; SMALL_COUNTS] {
    LOG_SMALL_COUNTS.get_or_init(|| Box::new(std::array::from_fn(|n| (n as f64).ln_1p())))
}

fn log_count(n: u64) -> f64 {
    if n < SMALL_COUNTS as u64 {
        small_count_logs()[n as usize]
    } else {
        (n as f64).ln_1p()
    }
}

fn frac(num: u32, den: u32) -> f64 {
    if den == 0 { 0.0 } else { f64::from(num) / f64::from(den) }
}

fn low_bits(bits: u128, n: u32) -> u128 {
    if n >= 128 { bits } else { bits & ((1u128 << n) - 1) }
}

fn bit_range(bits: u128, from: u32, to_inclusive: u32) -> u128 {
    low_bits(bits, to_inclusive + 1) >> from << from
}

/// Share of set bits in `bits[..span]` whose bit `lag` places older is also set (lag-autocorrelation).
fn lag_match(bits: u128, span: u32, lags: &[u32]) -> f64 {
    let window = low_bits(bits, span);
    let mut shifted = 0u128;
    for &lag in lags {
        shifted |= bits >> lag;
    }
    frac((window & shifted).count_ones(), window.count_ones())
}

/// Extracts the features of `record` as seen at `at`. Pure: only `record` and `at` matter, and only reads
/// before `at`.
pub fn extract(record: &ObjectRecord, at: UnixSeconds) -> FeatureVector {
    let stats = HistoryStats::from_history(&record.history, at);
    extract_with_stats(record, &stats)
}

/// Extracts the features from an already aggregated history (`stats.at` is the scoring time). The batch scorer
/// aggregates logs into [`HistoryStats`] directly; `record.history` is then ignored. The image features are 0.
pub fn extract_with_stats(record: &ObjectRecord, stats: &HistoryStats) -> FeatureVector {
    extract_image_with_stats(record, stats, None)
}

/// [`extract_with_stats`] for a container image: `image` fills the image features (tags, pulls by digest,
/// schedule, index). With `None` it is exactly [`extract_with_stats`].
pub fn extract_image_with_stats(
    record: &ObjectRecord,
    stats: &HistoryStats,
    image: Option<&ImageFacts>,
) -> FeatureVector {
    use Feature as F;
    let at = stats.at;
    let mut v = FeatureVector([0.0; FEATURE_COUNT]);
    let coverage_start = record.history.complete_since.filter(|&t| t <= at);
    let birth = crate::policy::birth(record.created, stats.first, coverage_start).filter(|&t| t <= at);

    // Recency and frequency.
    let age = birth.map_or(0, |b| at - b);
    let age_log = log_days(age);
    // Several durations default to the age: their logarithm is computed once.
    let log_days_or_age = |secs: i64| if secs == age { age_log } else { log_days(secs) };
    v.set(F::AgeDaysLog, age_log);
    v.flag(F::AgeKnown, record.created.is_some_and(|c| c <= at));
    v.set(
        F::ModifiedDaysLog,
        log_days_or_age(record.modified.filter(|&m| m <= at).map_or(age, |m| at - m)),
    );
    let silence = match stats.last {
        Some(last) => at - last,
        None => coverage_start.or(birth).map_or(0, |s| at - s),
    };
    v.set(F::SinceLastReadDaysLog, log_days_or_age(silence));
    v.flag(F::NeverRead, stats.count == 0);
    v.set(
        F::CoverageDaysLog,
        coverage_start.map_or(0.0, |s| log_days_or_age(at - s)),
    );
    let counts = stats.window_counts;
    for (f, n) in [
        F::Reads1dLog,
        F::Reads7dLog,
        F::Reads30dLog,
        F::Reads90dLog,
        F::Reads365dLog,
    ]
    .into_iter()
    .zip(counts)
    {
        v.set(f, log_count(u64::from(n)));
    }
    v.set(F::ReadsTotalLog, log_count(stats.count));
    v.set(F::ActiveDays7, frac(low_bits(stats.day_bits, 7).count_ones(), 7));
    v.set(F::ActiveDays30, frac(low_bits(stats.day_bits, 30).count_ones(), 30));
    v.set(F::ActiveDays128, frac(stats.day_bits.count_ones(), 128));
    v.set(F::ActiveWeeks52, frac(low_bits(stats.week_bits, 52).count_ones(), 52));
    v.set(F::ActiveWeeks128, frac(stats.week_bits.count_ones(), 128));

    // Gaps between the most recent reads (ages ascending, so gaps are differences of neighbours).
    let ages = stats.recent_ages();
    let mut whole_gaps = [0u32; RECENT_CAPACITY];
    let mut gaps = [0f64; RECENT_CAPACITY];
    let n_gaps = ages.len().saturating_sub(1);
    for i in 0..n_gaps {
        whole_gaps[i] = ages[i + 1] - ages[i];
        gaps[i] = f64::from(whole_gaps[i]);
    }
    let gaps = &gaps[..n_gaps];
    v.set(F::GapCountFrac, n_gaps as f64 / (RECENT_CAPACITY - 1) as f64);
    if n_gaps > 0 {
        let mean = gaps.iter().sum::<f64>() / n_gaps as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n_gaps as f64;
        let cv = if mean > 0.0 { (var.sqrt() / mean).min(10.0) } else { 0.0 };
        let day = DAY as f64;
        // Regular reads make the last, largest and mean gap equal: each logarithm is computed once.
        let max = gaps.iter().copied().fold(0.0, f64::max);
        // `log_days` of a whole gap is the `ln_1p` of the gap in days, as a float.
        let last_log = log_days(i64::from(whole_gaps[0]));
        let max_log = if max == gaps[0] { last_log } else { log_days(max as i64) };
        let mean_log = if mean == gaps[0] {
            last_log
        } else if mean == max {
            max_log
        } else {
            (mean / day).ln_1p()
        };
        v.set(F::GapMeanDaysLog, mean_log);
        v.set(F::GapLastDaysLog, last_log);
        v.set(F::GapMaxDaysLog, max_log);
        v.set(F::GapCv, cv);
        if n_gaps >= 2 {
            // The median of the whole-second gaps (sorting integers is cheaper; the conversion keeps the order).
            let whole_gaps = &mut whole_gaps[..n_gaps];
            whole_gaps.sort_unstable();
            let median = f64::from(whole_gaps[n_gaps / 2]);
            let pad = HOUR as f64;
            let ratio = ((silence.max(0) as f64 + pad) / (median + pad)).ln().clamp(-8.0, 8.0);
            v.set(F::OverdueLogRatio, ratio);
        }
        if n_gaps >= 3 {
            v.set(F::PeriodRegularity, 1.0 / (1.0 + cv));
        }
    }

    // Exponentially decayed counters.
    for (i, f) in [F::Decayed1dLog, F::Decayed7dLog, F::Decayed30dLog, F::Decayed180dLog]
        .into_iter()
        .enumerate()
    {
        // ln_1p(0) is 0: an empty counter needs no call.
        if stats.decayed_fixed[i] != 0 {
            v.set(f, stats.decayed(i).ln_1p());
        }
    }

    // Periodicity on the day and week bitmaps.
    v.set(F::WeeklyLagMatch, lag_match(stats.day_bits, 63, &[7]));
    v.set(F::MonthlyLagMatch, lag_match(stats.day_bits, 92, &[28, 29, 30, 31]));
    v.flag(F::MonthAgoUpcoming, bit_range(stats.day_bits, 16, 31) != 0);
    v.set(F::YearlyLagMatch, lag_match(stats.week_bits, 76, &[51, 52, 53]));
    v.flag(F::YearAgoUpcoming, bit_range(stats.week_bits, 47, 52) != 0);
    v.flag(F::TwoYearsAgoUpcoming, bit_range(stats.week_bits, 99, 104) != 0);

    // Naming.
    let name = name_signals(&record.key, record.content_type.as_deref());
    let media_flag = match name.media {
        Some(MediaKind::Image) => F::MediaImage,
        Some(MediaKind::VectorImage) => F::MediaVector,
        Some(MediaKind::Video) => F::MediaVideo,
        Some(MediaKind::Document) => F::MediaDocument,
        Some(MediaKind::Archive) => F::MediaArchive,
        Some(MediaKind::DiskImage) => F::MediaDiskImage,
        Some(MediaKind::ModelWeights) => F::MediaModel,
        Some(MediaKind::Web) => F::MediaWeb,
        Some(MediaKind::Data) => F::MediaData,
        Some(MediaKind::ContainerImage) => F::MediaContainer,
        Some(MediaKind::Other) | None => F::MediaUnknown,
    };
    v.flag(media_flag, true);
    v.set(F::DepthLog, log_count(u64::from(name.depth)));
    v.set(F::NameLenLog, log_count(u64::from(name.name_len)));
    v.flag(F::NameTemp, name.temp);
    v.flag(F::NameBackup, name.backup);
    v.flag(F::NameOld, name.old);
    v.flag(F::NameThumb, name.thumb);
    v.flag(F::NameSizeSuffix, name.size_suffix);
    v.flag(F::NameDate, name.date);
    let year_age = name.year.map_or(0, |y| (year_of(at) - i64::from(y)).max(0));
    v.set(F::NameYearAgeLog, log_count(year_age as u64));
    v.flag(F::NameHashLike, name.hash_like);
    v.flag(F::NameSemver, name.semver);
    v.flag(F::NameLatest, name.latest);
    v.flag(F::SeasonalWord, name.seasonal);
    v.flag(
        F::NameSeasonUpcoming,
        name.season_anchor.is_some_and(|anchor| season_upcoming(anchor, at)),
    );

    // Size and storage.
    v.set(F::SizeLog, log_count(record.size.unwrap_or(0)));
    v.flag(F::SizeKnown, record.size.is_some());
    let (infrequent, archive, unknown) = match record.storage_class {
        StorageClass::StandardIa | StorageClass::OnezoneIa | StorageClass::GlacierIr => (true, false, false),
        StorageClass::Glacier | StorageClass::DeepArchive => (false, true, false),
        StorageClass::Unspecified | StorageClass::Other => (false, false, true),
        StorageClass::Standard | StorageClass::IntelligentTiering => (false, false, false),
    };
    v.flag(F::StorageInfrequent, infrequent);
    v.flag(F::StorageArchive, archive);
    v.flag(F::StorageUnknown, unknown);

    // Siblings.
    let parent = [
        F::ParentKnown,
        F::ParentObjectsLog,
        F::ParentReadShare30d,
        F::ParentReads7dLog,
        F::ParentReads30dLog,
        F::ParentSinceReadDaysLog,
        F::ParentBulkDaysFrac,
        F::ParentSinceBulkDaysLog,
    ];
    let top = [
        F::TopKnown,
        F::TopObjectsLog,
        F::TopReadShare30d,
        F::TopReads7dLog,
        F::TopReads30dLog,
        F::TopSinceReadDaysLog,
        F::TopBulkDaysFrac,
        F::TopSinceBulkDaysLog,
    ];
    set_prefix(&mut v, parent, record.parent_activity.as_ref(), at, age, age_log);
    set_prefix(&mut v, top, record.top_activity.as_ref(), at, age, age_log);
    if let Some(image) = image {
        set_image(&mut v, image, at);
    }
    v
}

fn set_image(v: &mut FeatureVector, image: &ImageFacts, at: UnixSeconds) {
    use Feature as F;
    v.set(F::TagCountLog, log_count(image.tags.len() as u64));
    for tag in &image.tags {
        let shape = tag_shape(tag);
        for (f, on) in [
            (F::TagSemver, shape.semver),
            (F::TagLatest, shape.latest),
            (F::TagBranch, shape.branch),
            (F::TagShaLike, shape.sha_like),
            (F::TagBuildNumber, shape.build_number),
            (F::TagDate, shape.date),
        ] {
            if on {
                v.flag(f, true);
            }
        }
    }
    if !image.tags.is_empty() {
        v.set(
            F::NewestTagDaysLog,
            image
                .newest_tag_at
                .filter(|&t| t <= at)
                .map_or(0.0, |t| log_days(at - t)),
        );
    }
    let pulls = image.pulls_by_tag.saturating_add(image.pulls_by_digest);
    if pulls > 0 {
        v.set(
            F::PullsByDigestShare,
            image.pulls_by_digest.min(pulls) as f64 / pulls as f64,
        );
    }
    v.flag(F::ImageIndex, image.is_index);
    if let Some(schedule) = image.schedule {
        v.flag(F::ScheduledRun, true);
        v.set(F::ScheduledPeriodDaysLog, log_days(schedule.period_secs));
        v.set(
            F::ScheduledNextRunDaysLog,
            log_days(schedule.next_run.saturating_sub(at)),
        );
    }
}

/// The features of a prefix's activity; `age_log` is `log_days(age)`.
fn set_prefix(
    v: &mut FeatureVector,
    f: [Feature; 8],
    activity: Option<&PrefixActivity>,
    at: UnixSeconds,
    age: i64,
    age_log: f64,
) {
    let Some(a) = activity else {
        return;
    };
    // A prefix never read (or with no bulk scan) is scored as silent for the object's whole known life.
    let since = |t: Option<UnixSeconds>| match t.filter(|&t| t <= at) {
        Some(t) if at - t != age => log_days(at - t),
        _ => age_log,
    };
    v.flag(f[0], true);
    v.set(f[1], log_count(a.objects));
    v.set(
        f[2],
        if a.objects == 0 {
            0.0
        } else {
            a.objects_read_30d.min(a.objects) as f64 / a.objects as f64
        },
    );
    v.set(f[3], log_count(a.reads_7d));
    v.set(f[4], log_count(a.reads_30d));
    v.set(f[5], since(a.last_read));
    v.set(f[6], frac(a.bulk_scan_days_128d.min(128), 128));
    v.set(f[7], since(a.last_bulk_scan));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_consistent() {
        assert_eq!(Feature::ALL.len(), FEATURE_COUNT);
        for (i, f) in Feature::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(f.name(), FEATURE_NAMES[i]);
        }
        let mut names = FEATURE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FEATURE_COUNT, "feature names must be unique");
        assert_eq!(FeatureSchema::current().hash.len(), 16);
    }

    #[test]
    fn dropping_prefix_activity_equals_extracting_without_it() {
        let at = 300 * DAY;
        let mut r = ObjectRecord::with_key("a/b/c.png");
        r.history.accesses = vec![at - 5 * DAY, at - DAY];
        let without = extract(&r, at);
        let activity = PrefixActivity {
            objects: 10,
            objects_read_30d: 4,
            reads_7d: 3,
            reads_30d: 9,
            last_read: Some(at - DAY),
            bulk_scan_days_128d: 2,
            last_bulk_scan: Some(at - 20 * DAY),
        };
        r.parent_activity = Some(activity);
        r.top_activity = Some(activity);
        let with = extract(&r, at);
        assert_ne!(with, without);
        assert_eq!(with.without_prefix_activity(), without);
    }

    #[test]
    fn image_features_are_zero_without_image_facts_and_read_the_facts_with_them() {
        use crate::record::ScheduleFacts;
        let at = 400 * DAY;
        let mut r = ObjectRecord::with_key("team/app@sha256:0123456789abcdef0123456789abcdef");
        r.history.accesses = vec![at - 3 * DAY];
        let plain = extract(&r, at);
        let stats = HistoryStats::from_history(&r.history, at);
        assert_eq!(extract_image_with_stats(&r, &stats, None), plain);
        let image_features = [
            Feature::TagCountLog,
            Feature::TagSemver,
            Feature::TagLatest,
            Feature::TagBranch,
            Feature::TagShaLike,
            Feature::TagBuildNumber,
            Feature::TagDate,
            Feature::NewestTagDaysLog,
            Feature::PullsByDigestShare,
            Feature::ImageIndex,
            Feature::ScheduledRun,
            Feature::ScheduledPeriodDaysLog,
            Feature::ScheduledNextRunDaysLog,
        ];
        assert!(image_features.iter().all(|&f| plain.get(f) == 0.0));
        let facts = ImageFacts {
            tags: vec!["1.4.2".into(), "latest".into()],
            newest_tag_at: Some(at - 10 * DAY),
            pulls_by_tag: 3,
            pulls_by_digest: 1,
            is_index: true,
            schedule: Some(ScheduleFacts {
                next_run: at + 2 * DAY,
                period_secs: 30 * DAY,
            }),
        };
        let v = extract_image_with_stats(&r, &stats, Some(&facts));
        assert!((v.get(Feature::TagCountLog) - 3f64.ln()).abs() < 1e-12);
        assert_eq!(v.get(Feature::TagSemver), 1.0);
        assert_eq!(v.get(Feature::TagLatest), 1.0);
        assert_eq!(v.get(Feature::TagBranch), 0.0);
        assert!((v.get(Feature::NewestTagDaysLog) - 11f64.ln()).abs() < 1e-12);
        assert_eq!(v.get(Feature::PullsByDigestShare), 0.25);
        assert_eq!(v.get(Feature::ImageIndex), 1.0);
        assert_eq!(v.get(Feature::ScheduledRun), 1.0);
        assert!((v.get(Feature::ScheduledPeriodDaysLog) - 31f64.ln()).abs() < 1e-12);
        assert!((v.get(Feature::ScheduledNextRunDaysLog) - 3f64.ln()).abs() < 1e-12);
        // Everything else is the plain extraction.
        for f in Feature::ALL.iter().filter(|f| !image_features.contains(f)) {
            assert_eq!(v.get(*f), plain.get(*f), "{}", f.name());
        }
    }

    #[test]
    fn monthly_job_looks_regular_and_due() {
        let at = 400 * DAY;
        let mut r = ObjectRecord::with_key("jobs/monthly/report-image.png");
        r.history.accesses = (1..=12).rev().map(|m| at - m * 30 * DAY + 3 * HOUR).collect();
        r.history.complete_since = Some(0);
        let v = extract(&r, at);
        assert!(
            v.get(Feature::PeriodRegularity) > 0.9,
            "{}",
            v.get(Feature::PeriodRegularity)
        );
        assert!(v.get(Feature::MonthlyLagMatch) > 0.9);
        assert!(v.get(Feature::OverdueLogRatio) < 0.1);
        assert_eq!(v.get(Feature::MonthAgoUpcoming), 1.0);
    }

    #[test]
    fn seasonal_asset_sees_last_year() {
        let at = 800 * DAY;
        let mut r = ObjectRecord::with_key("cdn/xmas/banner.jpg");
        r.history.accesses = (0..20).map(|i| at - 365 * DAY + 3 * DAY + i * HOUR).collect();
        let v = extract(&r, at);
        assert_eq!(v.get(Feature::YearAgoUpcoming), 1.0);
        assert_eq!(v.get(Feature::SeasonalWord), 1.0);
        assert_eq!(v.get(Feature::Reads30dLog), 0.0);
    }

    #[test]
    fn seasonal_word_knows_when_its_campaign_is_on() {
        let r = ObjectRecord::with_key("cdn/christmas-2025/banner.jpg");
        let on = |y: i64, m: u32, d: u32| {
            let at = crate::time::days_from_civil(y, m, d) * DAY + 12 * HOUR;
            extract(&r, at).get(Feature::NameSeasonUpcoming)
        };
        assert_eq!(on(2026, 11, 1), 1.0, "54 days ahead");
        assert_eq!(on(2026, 12, 30), 1.0, "5 days past");
        assert_eq!(on(2027, 1, 5), 0.0, "11 days past: over");
        assert_eq!(on(2026, 7, 1), 0.0, "half a year away");
        // Across the year boundary: New Year's campaign in December.
        let r = ObjectRecord::with_key("img/newyear/fireworks.webp");
        let at = crate::time::days_from_civil(2026, 12, 10) * DAY;
        assert_eq!(extract(&r, at).get(Feature::NameSeasonUpcoming), 1.0);
    }
}
