//! The inventory plan (every object's facts) and the access events drawn from it.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Poisson};
use reprieve_core::record::StorageClass;
use reprieve_core::time::{DAY, HOUR, days_from_civil, year_of};

use crate::names::{self, NameInput, SEASONS, THEMES, Theme, splitmix64};
use crate::{Cohort, SynthConfig};

/// Objects per ordinary sub-prefix, on average.
const OBJECTS_PER_SUB: f64 = 200.0;
/// Objects per re-scanned sub-prefix, on average.
const OBJECTS_PER_RESCAN_SUB: u64 = 150;
/// Oldest pre-existing object, in days before `start`.
const MAX_AGE_DAYS: f64 = 3.0 * 365.0;
/// A popular object's rate never decays below this fraction of its upload-time rate.
pub(crate) const DECAY_FLOOR: f64 = 0.1;

const TENANT_NAMES: [&str; 8] = [
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
];
const TEAMS: [&str; 10] = [
    "team-web",
    "team-data",
    "team-ml",
    "team-platform",
    "team-marketing",
    "team-finance",
    "team-media",
    "team-infra",
    "team-search",
    "team-mobile",
];

/// One object of the plan. Strings live in [`Plan`]'s arenas.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Object {
    pub cohort: Cohort,
    pub ext: u8,
    pub storage_class: StorageClass,
    pub legal_hold: bool,
    /// Index into [`TEAMS`], or `u8::MAX` for an unknown owner.
    pub owner: u8,
    pub live_references: u8,
    /// Season of a yearly object, popularity sub-stream otherwise.
    pub season: u8,
    pub tenant: u32,
    /// Index of the re-scanned sub-prefix (`u32::MAX` for none).
    pub rescan_sub: u32,
    pub created: i64,
    pub modified: i64,
    pub retain_until: Option<i64>,
    pub size: u64,
    /// Upload-time read rate of a popular object, reads/day.
    pub rate: f32,
}

/// Everything about the generated inventory.
#[derive(Debug)]
pub(crate) struct Plan {
    pub objects: Vec<Object>,
    pub tenants: Vec<String>,
    /// All keys concatenated; key `i` is `keys[key_ends[i-1]..key_ends[i]]`.
    pub keys: String,
    pub key_ends: Vec<usize>,
    /// Scan start times of each re-scanned sub-prefix.
    pub rescans: Vec<Vec<i64>>,
    pub start: i64,
    pub end: i64,
}

impl Plan {
    pub fn key(&self, i: usize) -> &str {
        let from = if i == 0 { 0 } else { self.key_ends[i - 1] };
        &self.keys[from..self.key_ends[i]]
    }

    pub fn owner(&self, i: usize) -> Option<&'static str> {
        TEAMS.get(usize::from(self.objects[i].owner)).copied()
    }
}

fn tenant_name(i: u32) -> String {
    match TENANT_NAMES.get(i as usize) {
        Some(n) => (*n).to_owned(),
        None => format!("tenant{i:03}"),
    }
}

fn pick_weighted(cumulative: &[f64], rng: &mut SmallRng) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let x = rng.random::<f64>() * total;
    cumulative.partition_point(|&c| c <= x).min(cumulative.len() - 1)
}

/// A top-level prefix.
#[derive(Debug)]
struct Top {
    name: String,
    theme: Theme,
    tenant: u32,
    owner: u8,
    subs: u32,
    sub_word: &'static str,
}

/// Builds the inventory: cohorts, placement, times, sizes, flags and keys.
pub(crate) fn build_plan(config: &SynthConfig) -> Plan {
    let n = config.objects as usize;
    let start = config.start;
    let end = config.end();
    let mut rng = SmallRng::seed_from_u64(splitmix64(config.seed));

    // Cohorts: exact counts from the shares, shuffled over the objects.
    let counts = [
        (Cohort::OneOff, config.share_one_off),
        (Cohort::Dead, config.share_dead),
        (Cohort::Monthly, config.share_monthly),
        (Cohort::Weekly, config.share_weekly),
        (Cohort::Yearly, config.share_yearly),
        (Cohort::Rescan, config.share_rescan),
    ];
    let mut cohorts: Vec<Cohort> = Vec::with_capacity(n);
    for (cohort, share) in counts {
        let k = ((share * n as f64).round() as usize).min(n - cohorts.len());
        cohorts.extend(std::iter::repeat_n(cohort, k));
    }
    cohorts.resize(n, Cohort::Popular);
    cohorts.shuffle(&mut rng);

    // Top-level prefixes: a theme, a tenant (round-robin), an owning team and a size weight.
    let tenants: Vec<String> = (0..config.tenants).map(tenant_name).collect();
    let n_tops = config.effective_prefixes() as usize;
    let theme_cum: Vec<f64> = THEMES
        .iter()
        .scan(0.0, |acc, (_, w)| {
            *acc += w;
            Some(*acc)
        })
        .collect();
    let mut used_words: std::collections::HashMap<&'static str, u32> = Default::default();
    let mut tops: Vec<Top> = Vec::with_capacity(n_tops);
    let mut top_cum: Vec<f64> = Vec::with_capacity(n_tops);
    let mut acc = 0.0;
    for t in 0..n_tops {
        let theme = THEMES[pick_weighted(&theme_cum, &mut rng)].0;
        let words = theme.top_words();
        let word = words[rng.random_range(0..words.len())];
        let used = used_words.entry(word).or_insert(0);
        let name = if *used == 0 {
            word.to_owned()
        } else {
            format!("{word}-{used}")
        };
        *used += 1;
        let sub_words = theme.sub_words();
        tops.push(Top {
            name,
            theme,
            tenant: (t % tenants.len()) as u32,
            owner: rng.random_range(0..TEAMS.len()) as u8,
            subs: 0,
            sub_word: sub_words[rng.random_range(0..sub_words.len())],
        });
        // Log-normal-ish spread of prefix sizes.
        acc += (rng.random::<f64>() * 2.0 - 1.0).exp2() * (1.0 + rng.random::<f64>());
        top_cum.push(acc);
    }

    // Placement: ordinary objects go to a weighted random top; rescan objects to dedicated sub-prefixes.
    let n_rescan = cohorts.iter().filter(|c| **c == Cohort::Rescan).count() as u64;
    let n_rescan_subs = n_rescan.div_ceil(OBJECTS_PER_RESCAN_SUB) as usize;
    let mut top_of: Vec<u32> = Vec::with_capacity(n);
    let mut top_counts = vec![0u64; n_tops];
    for &c in &cohorts {
        if c == Cohort::Rescan {
            top_of.push(u32::MAX);
        } else {
            let t = pick_weighted(&top_cum, &mut rng);
            top_counts[t] += 1;
            top_of.push(t as u32);
        }
    }
    for (top, &count) in tops.iter_mut().zip(&top_counts) {
        top.subs = ((count as f64 / OBJECTS_PER_SUB).round() as u32).max(1);
    }
    // Each re-scanned sub-prefix lives in a random top, numbered after that top's ordinary subs.
    let mut rescan_place: Vec<(u32, u32)> = Vec::with_capacity(n_rescan_subs);
    let mut extra_subs = vec![0u32; n_tops];
    for _ in 0..n_rescan_subs {
        let t = rng.random_range(0..n_tops);
        rescan_place.push((t as u32, tops[t].subs + extra_subs[t]));
        extra_subs[t] += 1;
    }
    let rescans: Vec<Vec<i64>> = (0..n_rescan_subs).map(|_| rescan_schedule(config, &mut rng)).collect();

    // Popular objects: a random Zipf rank each; the rate is normalised so its cohort mean is mean_reads_per_day.
    let mut popular: Vec<u32> = (0..n as u32)
        .filter(|&i| cohorts[i as usize] == Cohort::Popular)
        .collect();
    popular.shuffle(&mut rng);
    let weight_sum: f64 = (1..=popular.len())
        .map(|r| (r as f64).powf(-config.zipf_exponent))
        .sum();
    let mut rates = vec![0f32; n];
    if weight_sum > 0.0 {
        let scale = config.mean_reads_per_day * popular.len() as f64 / weight_sum;
        for (r, &i) in popular.iter().enumerate() {
            rates[i as usize] = (scale * ((r + 1) as f64).powf(-config.zipf_exponent)) as f32;
        }
    }
    drop(popular);

    let mut objects = Vec::with_capacity(n);
    let mut keys = String::with_capacity(n * 48);
    let mut key_ends = Vec::with_capacity(n);
    let mut rescan_next = 0usize;
    let span = (end - start) as f64;
    for i in 0..n {
        let mut orng = SmallRng::seed_from_u64(splitmix64(config.seed ^ splitmix64(i as u64 + 1)));
        let cohort = cohorts[i];
        let (top_idx, sub, rescan_sub) = if cohort == Cohort::Rescan {
            // Deal rescan objects to their sub-prefixes in turn (randomness is in the cohort shuffle).
            let s = rescan_next % n_rescan_subs.max(1);
            rescan_next += 1;
            let (t, sub) = rescan_place[s];
            (t as usize, sub, s as u32)
        } else {
            let t = top_of[i] as usize;
            (t, orng.random_range(0..tops[t].subs), u32::MAX)
        };
        let top = &tops[top_idx];

        let created = if orng.random::<f64>() < config.share_new_uploads {
            start + (orng.random::<f64>() * span) as i64
        } else {
            start - HOUR - (orng.random::<f64>() * MAX_AGE_DAYS * DAY as f64) as i64
        };
        let modified = if created < start && orng.random::<f64>() < 0.1 {
            created + (orng.random::<f64>() * (start - created).min(365 * DAY) as f64) as i64
        } else {
            created
        };
        let age_days = (start - created) as f64 / DAY as f64;
        let storage_class = storage_class(cohort, age_days, &mut orng);
        let ext = top.theme.pick_ext(&mut orng);
        let size = names::pick_size(ext, &mut orng);
        let owner = if orng.random::<f64>() < config.share_unknown_owner {
            u8::MAX
        } else if orng.random::<f64>() < 0.1 {
            orng.random_range(0..TEAMS.len()) as u8
        } else {
            top.owner
        };
        let legal_hold = orng.random::<f64>() < config.share_legal_hold;
        let retain_until = (orng.random::<f64>() < config.share_retention)
            .then(|| end + ((30.0 + orng.random::<f64>() * 1065.0) * DAY as f64) as i64);
        let live_references = if orng.random::<f64>() < config.share_live_reference {
            orng.random_range(1..=3u8)
        } else {
            0
        };
        let season = orng.random_range(0..SEASONS.len()) as u8;

        use std::fmt::Write as _;
        keys.push_str(&top.name);
        keys.push('/');
        let _ = write!(keys, "{}{sub:03}/", top.sub_word);
        let input = NameInput {
            index: i as u32,
            seed: config.seed,
            cohort,
            theme: top.theme,
            ext,
            created,
            season,
        };
        names::push_file_name(&input, config.name_signal, &mut orng, &mut keys);
        key_ends.push(keys.len());

        objects.push(Object {
            cohort,
            ext,
            storage_class,
            legal_hold,
            owner,
            live_references,
            season,
            tenant: top.tenant,
            rescan_sub,
            created,
            modified,
            retain_until,
            size,
            rate: rates[i],
        });
    }
    Plan {
        objects,
        tenants,
        keys,
        key_ends,
        rescans,
        start,
        end,
    }
}

/// Storage class by age (S3 minimum durations: IA after 30 days, archive tiers after 90). Only objects that are
/// never read in the log (dead, one-off) are found in the flexible/deep archive tiers, which need a restore.
fn storage_class(cohort: Cohort, age_days: f64, rng: &mut SmallRng) -> StorageClass {
    let x = rng.random::<f64>();
    if age_days < 30.0 {
        return if x < 0.9 {
            StorageClass::Standard
        } else {
            StorageClass::IntelligentTiering
        };
    }
    let cold_ok = age_days >= 90.0 && matches!(cohort, Cohort::Dead | Cohort::OneOff);
    match x {
        x if x < 0.68 => StorageClass::Standard,
        x if x < 0.83 => StorageClass::StandardIa,
        x if x < 0.91 => StorageClass::IntelligentTiering,
        x if x < 0.95 && age_days >= 90.0 => StorageClass::GlacierIr,
        x if x < 0.98 && cold_ok => StorageClass::Glacier,
        _ if cold_ok => StorageClass::DeepArchive,
        _ => StorageClass::Standard,
    }
}

/// Scan start times of one re-scanned sub-prefix within the log window.
fn rescan_schedule(config: &SynthConfig, rng: &mut SmallRng) -> Vec<i64> {
    let interval = config.rescan_interval_days * DAY as f64;
    let jitter = config.rescan_jitter_days * DAY as f64;
    let mut t = config.start as f64 + rng.random::<f64>() * interval;
    let mut out = Vec::new();
    while (t as i64) < config.end() {
        out.push(t as i64);
        t += (interval + (rng.random::<f64>() * 2.0 - 1.0) * jitter).max(HOUR as f64);
    }
    out
}

/// Appends the reads of object `i` as `(ts - start) << 32 | i`.
pub(crate) fn object_events(plan: &Plan, config: &SynthConfig, i: usize, out: &mut Vec<u64>) -> u64 {
    let o = &plan.objects[i];
    let start = plan.start;
    let end = plan.end;
    let first = start.max(o.created);
    if first >= end {
        return 0;
    }
    let mut rng = SmallRng::seed_from_u64(splitmix64(splitmix64(config.seed.wrapping_add(0x5EED)) ^ (i as u64)));
    let before = out.len();
    let mut push = |t: i64| {
        if t >= first && t < end {
            out.push((((t - start) as u64) << 32) | i as u64);
        }
    };
    let poisson = |lambda: f64, rng: &mut SmallRng| -> u64 {
        if lambda > 0.0 && lambda.is_finite() {
            Poisson::new(lambda).map(|d| d.sample(rng) as u64).unwrap_or(0)
        } else {
            0
        }
    };
    match o.cohort {
        Cohort::Dead => {}
        Cohort::OneOff => {
            // A few reads within the first days after upload (mean 12 hours after, capped at a week).
            let k = 1 + poisson(2.0, &mut rng);
            let exp = Exp::new(1.0 / (12.0 * HOUR as f64)).ok();
            for _ in 0..k {
                let dt = exp.map_or(HOUR as f64, |e| e.sample(&mut rng)).min(7.0 * DAY as f64);
                push(o.created + 1 + dt as i64);
            }
        }
        Cohort::Monthly | Cohort::Weekly => {
            let (period, burst_mean, burst_len) = if o.cohort == Cohort::Monthly {
                (30 * DAY, 3.0, 2 * HOUR)
            } else {
                (7 * DAY, 1.0, HOUR)
            };
            // The job runs at a fixed phase (day and hour) of its period.
            let mut t = start + (rng.random::<f64>() * period as f64) as i64;
            while t < end {
                let k = 1 + poisson(burst_mean, &mut rng);
                for _ in 0..k {
                    push(t + rng.random_range(0..burst_len));
                }
                t += period;
            }
        }
        Cohort::Yearly => {
            let season = &SEASONS[usize::from(o.season)];
            let per_day = 0.5 + rng.random::<f64>() * 3.0;
            for year in year_of(start) - 1..=year_of(end) {
                let s = days_from_civil(year, season.month, season.day) * DAY;
                let e = s + season.length_days * DAY;
                let (a, b) = (s.max(first), e.min(end));
                if a >= b {
                    continue;
                }
                let k = poisson(per_day * (b - a) as f64 / DAY as f64, &mut rng);
                for _ in 0..k {
                    push(rng.random_range(a..b));
                }
            }
        }
        Cohort::Rescan => {
            if let Some(scans) = plan.rescans.get(o.rescan_sub as usize) {
                for &s in scans {
                    push(s + rng.random_range(0..HOUR));
                }
            }
        }
        Cohort::Popular => {
            // Inhomogeneous Poisson process by thinning: the rate decays with age, so the rate at `first` bounds it.
            let half_life = config.decay_half_life_days * DAY as f64;
            let rate_at = |t: i64| -> f64 {
                let age = (t - o.created).max(0) as f64;
                f64::from(o.rate) * (DECAY_FLOOR + (1.0 - DECAY_FLOOR) * (-age / half_life).exp2())
            };
            let max_rate = rate_at(first);
            let k = poisson(max_rate * (end - first) as f64 / DAY as f64, &mut rng);
            for _ in 0..k {
                let t = rng.random_range(first..end);
                if rng.random::<f64>() * max_rate <= rate_at(t) {
                    push(t);
                }
            }
        }
    }
    (out.len() - before) as u64
}
