//! Feature extraction as it was before the speed-ups (reprieve-features-v3), kept as the reference the faster
//! extractor is tested against: same definitions, written the obvious way.

use reprieve_core::features::{FEATURE_COUNT, Feature};
use reprieve_core::history::RECENT_CAPACITY;
use reprieve_core::naming::MediaKind;
use reprieve_core::time::{DAY, HOUR, UnixSeconds, year_of};
use reprieve_core::{HistoryStats, ImageFacts, ObjectRecord, PrefixActivity, StorageClass};

use super::naming::{name_signals, tag_shape};

/// A feature vector under construction.
#[derive(Debug, Clone, PartialEq)]
pub struct V(pub [f64; FEATURE_COUNT]);

impl V {
    fn set(&mut self, f: Feature, v: f64) {
        self.0[f as usize] = if v.is_finite() { v } else { 0.0 };
    }

    fn flag(&mut self, f: Feature, on: bool) {
        self.set(f, if on { 1.0 } else { 0.0 });
    }
}

fn days(secs: i64) -> f64 {
    secs.max(0) as f64 / DAY as f64
}

fn log_days(secs: i64) -> f64 {
    days(secs).ln_1p()
}

/// Lead time before a seasonal date during which its assets are expected in use, and the tail after it.
const SEASON_LEAD_DAYS: i64 = 60;
const SEASON_TAIL_DAYS: i64 = 7;

/// Whether `at` lies in `[date - lead, date + tail]` for the (month, day) `anchor` in some year.
fn season_upcoming((month, day): (u8, u8), at: UnixSeconds) -> bool {
    let year = year_of(at);
    (year - 1..=year + 1).any(|y| {
        let date = reprieve_core::time::days_from_civil(y, u32::from(month), u32::from(day)) * DAY;
        (date - SEASON_LEAD_DAYS * DAY..=date + SEASON_TAIL_DAYS * DAY).contains(&at)
    })
}

fn log_count(n: u64) -> f64 {
    (n as f64).ln_1p()
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
pub fn extract(record: &ObjectRecord, at: UnixSeconds) -> V {
    let stats = super::history::from_history(&record.history, at);
    extract_with_stats(record, &stats)
}

/// Extracts the features from an already aggregated history (`stats.at` is the scoring time). The batch scorer
/// aggregates logs into [`HistoryStats`] directly; `record.history` is then ignored. The image features are 0.
pub fn extract_with_stats(record: &ObjectRecord, stats: &HistoryStats) -> V {
    extract_image_with_stats(record, stats, None)
}

/// [`extract_with_stats`] for a container image: `image` fills the image features (tags, pulls by digest,
/// schedule, index). With `None` it is exactly [`extract_with_stats`].
pub fn extract_image_with_stats(record: &ObjectRecord, stats: &HistoryStats, image: Option<&ImageFacts>) -> V {
    use Feature as F;
    let at = stats.at;
    let mut v = V([0.0; FEATURE_COUNT]);
    let coverage_start = record.history.complete_since.filter(|&t| t <= at);
    let birth = record.created.or(stats.first).or(coverage_start).filter(|&t| t <= at);

    // Recency and frequency.
    let age = birth.map_or(0, |b| at - b);
    v.set(F::AgeDaysLog, log_days(age));
    v.flag(F::AgeKnown, record.created.is_some_and(|c| c <= at));
    v.set(
        F::ModifiedDaysLog,
        log_days(record.modified.filter(|&m| m <= at).map_or(age, |m| at - m)),
    );
    let silence = match stats.last {
        Some(last) => at - last,
        None => coverage_start.or(birth).map_or(0, |s| at - s),
    };
    v.set(F::SinceLastReadDaysLog, log_days(silence));
    v.flag(F::NeverRead, stats.count == 0);
    v.set(F::CoverageDaysLog, coverage_start.map_or(0.0, |s| log_days(at - s)));
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
    let mut gaps = [0f64; RECENT_CAPACITY];
    let n_gaps = ages.len().saturating_sub(1);
    for i in 0..n_gaps {
        gaps[i] = f64::from(ages[i + 1] - ages[i]);
    }
    let gaps = &mut gaps[..n_gaps];
    v.set(F::GapCountFrac, n_gaps as f64 / (RECENT_CAPACITY - 1) as f64);
    if n_gaps > 0 {
        let mean = gaps.iter().sum::<f64>() / n_gaps as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n_gaps as f64;
        let cv = if mean > 0.0 { (var.sqrt() / mean).min(10.0) } else { 0.0 };
        let day = DAY as f64;
        v.set(F::GapMeanDaysLog, (mean / day).ln_1p());
        v.set(F::GapLastDaysLog, (gaps[0] / day).ln_1p());
        v.set(
            F::GapMaxDaysLog,
            (gaps.iter().copied().fold(0.0, f64::max) / day).ln_1p(),
        );
        v.set(F::GapCv, cv);
        if n_gaps >= 2 {
            gaps.sort_by(f64::total_cmp);
            let median = gaps[n_gaps / 2];
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
        v.set(f, stats.decayed(i).ln_1p());
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
    v.set(F::DepthLog, f64::from(name.depth).ln_1p());
    v.set(F::NameLenLog, f64::from(name.name_len).ln_1p());
    v.flag(F::NameTemp, name.temp);
    v.flag(F::NameBackup, name.backup);
    v.flag(F::NameOld, name.old);
    v.flag(F::NameThumb, name.thumb);
    v.flag(F::NameSizeSuffix, name.size_suffix);
    v.flag(F::NameDate, name.date);
    let year_age = name.year.map_or(0, |y| (year_of(at) - i64::from(y)).max(0));
    v.set(F::NameYearAgeLog, (year_age as f64).ln_1p());
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
    set_prefix(&mut v, parent, record.parent_activity.as_ref(), at, age);
    set_prefix(&mut v, top, record.top_activity.as_ref(), at, age);
    if let Some(image) = image {
        set_image(&mut v, image, at);
    }
    v
}

fn set_image(v: &mut V, image: &ImageFacts, at: UnixSeconds) {
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

fn set_prefix(v: &mut V, f: [Feature; 8], activity: Option<&PrefixActivity>, at: UnixSeconds, age: i64) {
    let Some(a) = activity else {
        return;
    };
    // A prefix never read (or with no bulk scan) is scored as silent for the object's whole known life.
    let since = |t: Option<UnixSeconds>| log_days(t.filter(|&t| t <= at).map_or(age, |t| at - t));
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
