//! Realistic-looking names: themes of top-level prefixes, extensions, sizes, and name styles per cohort.

use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, LogNormal};

use crate::Cohort;

/// What a top-level prefix holds: decides its name, sub-prefix names, extensions and word stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Theme {
    Images,
    Media,
    Docs,
    Backups,
    Models,
    VmImages,
}

/// (theme, weight) of top-level prefixes: mostly images.
pub(crate) const THEMES: [(Theme, f64); 6] = [
    (Theme::Images, 0.70),
    (Theme::Media, 0.12),
    (Theme::Docs, 0.09),
    (Theme::Backups, 0.04),
    (Theme::Models, 0.03),
    (Theme::VmImages, 0.02),
];

/// Extension, content type, log-normal median size in bytes, log-normal sigma, min, max.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ext {
    pub ext: &'static str,
    pub content_type: &'static str,
    median: f64,
    sigma: f64,
    min: f64,
    max: f64,
}

const KB: f64 = 1_024.0;
const MB: f64 = 1_048_576.0;
const GB: f64 = 1_073_741_824.0;

pub(crate) const EXTS: &[Ext] = &[
    Ext {
        ext: "jpg",
        content_type: "image/jpeg",
        median: 300.0 * KB,
        sigma: 0.9,
        min: 20.0 * KB,
        max: 8.0 * MB,
    },
    Ext {
        ext: "png",
        content_type: "image/png",
        median: 180.0 * KB,
        sigma: 1.0,
        min: 2.0 * KB,
        max: 8.0 * MB,
    },
    Ext {
        ext: "webp",
        content_type: "image/webp",
        median: 90.0 * KB,
        sigma: 0.8,
        min: 5.0 * KB,
        max: 4.0 * MB,
    },
    Ext {
        ext: "gif",
        content_type: "image/gif",
        median: 400.0 * KB,
        sigma: 1.1,
        min: 5.0 * KB,
        max: 12.0 * MB,
    },
    Ext {
        ext: "svg",
        content_type: "image/svg+xml",
        median: 12.0 * KB,
        sigma: 0.9,
        min: 500.0,
        max: 1.0 * MB,
    },
    Ext {
        ext: "mp4",
        content_type: "video/mp4",
        median: 40.0 * MB,
        sigma: 1.2,
        min: 500.0 * KB,
        max: 4.0 * GB,
    },
    Ext {
        ext: "webm",
        content_type: "video/webm",
        median: 25.0 * MB,
        sigma: 1.2,
        min: 300.0 * KB,
        max: 2.0 * GB,
    },
    Ext {
        ext: "pdf",
        content_type: "application/pdf",
        median: 600.0 * KB,
        sigma: 1.1,
        min: 20.0 * KB,
        max: 200.0 * MB,
    },
    Ext {
        ext: "csv",
        content_type: "text/csv",
        median: 2.0 * MB,
        sigma: 1.5,
        min: 1.0 * KB,
        max: 2.0 * GB,
    },
    Ext {
        ext: "tar.gz",
        content_type: "application/gzip",
        median: 800.0 * MB,
        sigma: 1.3,
        min: 1.0 * MB,
        max: 200.0 * GB,
    },
    Ext {
        ext: "zip",
        content_type: "application/zip",
        median: 200.0 * MB,
        sigma: 1.3,
        min: 100.0 * KB,
        max: 50.0 * GB,
    },
    Ext {
        ext: "qcow2",
        content_type: "application/octet-stream",
        median: 6.0 * GB,
        sigma: 0.7,
        min: 300.0 * MB,
        max: 200.0 * GB,
    },
    Ext {
        ext: "img",
        content_type: "application/octet-stream",
        median: 4.0 * GB,
        sigma: 0.7,
        min: 100.0 * MB,
        max: 100.0 * GB,
    },
    Ext {
        ext: "safetensors",
        content_type: "application/octet-stream",
        median: 2.0 * GB,
        sigma: 1.1,
        min: 10.0 * MB,
        max: 150.0 * GB,
    },
    Ext {
        ext: "onnx",
        content_type: "application/octet-stream",
        median: 400.0 * MB,
        sigma: 1.0,
        min: 1.0 * MB,
        max: 20.0 * GB,
    },
];

fn ext_index(name: &str) -> usize {
    EXTS.iter().position(|e| e.ext == name).unwrap_or(0)
}

impl Theme {
    pub(crate) fn top_words(self) -> &'static [&'static str] {
        match self {
            Self::Images => &[
                "cdn",
                "assets",
                "product-images",
                "user-uploads",
                "avatars",
                "catalog",
                "static",
                "img",
                "gallery",
                "marketing",
                "media-library",
                "listings",
            ],
            Self::Media => &["videos", "streams", "clips", "media"],
            Self::Docs => &["docs", "invoices", "reports", "contracts"],
            Self::Backups => &["backups", "db-dumps", "exports"],
            Self::Models => &["models", "checkpoints", "ml-artifacts"],
            Self::VmImages => &["vm-images", "golden-images", "disk-images"],
        }
    }

    pub(crate) fn sub_words(self) -> &'static [&'static str] {
        match self {
            Self::Images => &["batch", "shard", "collection", "store", "page", "album"],
            Self::Media => &["channel", "series", "upload"],
            Self::Docs => &["account", "dept", "client"],
            Self::Backups => &["host", "cluster", "db"],
            Self::Models => &["run", "experiment", "team"],
            Self::VmImages => &["pool", "region", "fleet"],
        }
    }

    fn words(self) -> &'static [&'static str] {
        match self {
            Self::Images => &[
                "product",
                "banner",
                "hero",
                "photo",
                "logo",
                "avatar",
                "header",
                "promo",
                "item",
                "cover",
                "portrait",
                "landscape",
            ],
            Self::Media => &["clip", "video", "trailer", "episode", "intro", "teaser"],
            Self::Docs => &["invoice", "report", "manual", "statement", "brochure", "summary"],
            Self::Backups => &["db", "site", "home", "volume", "etc", "mail"],
            Self::Models => &["resnet", "bert", "llama", "vit", "encoder", "ranker"],
            Self::VmImages => &["ubuntu", "debian", "base", "worker", "node", "builder"],
        }
    }

    /// (extension index, weight).
    fn ext_weights(self) -> &'static [(&'static str, f64)] {
        match self {
            Self::Images => &[
                ("jpg", 0.48),
                ("png", 0.20),
                ("webp", 0.15),
                ("gif", 0.05),
                ("svg", 0.06),
                ("mp4", 0.03),
                ("pdf", 0.03),
            ],
            Self::Media => &[
                ("mp4", 0.45),
                ("webm", 0.10),
                ("jpg", 0.35),
                ("png", 0.05),
                ("gif", 0.05),
            ],
            Self::Docs => &[("pdf", 0.60), ("png", 0.15), ("jpg", 0.15), ("csv", 0.10)],
            Self::Backups => &[("tar.gz", 0.65), ("zip", 0.20), ("qcow2", 0.15)],
            Self::Models => &[("safetensors", 0.65), ("onnx", 0.35)],
            Self::VmImages => &[("qcow2", 0.70), ("img", 0.30)],
        }
    }

    pub(crate) fn pick_ext(self, rng: &mut SmallRng) -> u8 {
        let weights = self.ext_weights();
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        let mut x = rng.random::<f64>() * total;
        for (name, w) in weights {
            if x < *w {
                return ext_index(name) as u8;
            }
            x -= w;
        }
        ext_index(weights[0].0) as u8
    }
}

/// Log-normal size of an object with extension index `ext`.
pub(crate) fn pick_size(ext: u8, rng: &mut SmallRng) -> u64 {
    let e = &EXTS[usize::from(ext)];
    let size = LogNormal::new(e.median.ln(), e.sigma)
        .map(|d| d.sample(rng))
        .unwrap_or(e.median);
    size.clamp(e.min, e.max) as u64
}

/// A season: the word used in names, the month and day it starts, its length in days.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Season {
    pub word: &'static str,
    pub month: u32,
    pub day: u32,
    pub length_days: i64,
}

pub(crate) const SEASONS: [Season; 8] = [
    Season {
        word: "valentines",
        month: 2,
        day: 1,
        length_days: 14,
    },
    Season {
        word: "easter",
        month: 3,
        day: 25,
        length_days: 14,
    },
    Season {
        word: "summer",
        month: 6,
        day: 15,
        length_days: 16,
    },
    Season {
        word: "backtoschool",
        month: 8,
        day: 15,
        length_days: 14,
    },
    Season {
        word: "halloween",
        month: 10,
        day: 17,
        length_days: 15,
    },
    Season {
        word: "blackfriday",
        month: 11,
        day: 18,
        length_days: 12,
    },
    Season {
        word: "christmas",
        month: 12,
        day: 8,
        length_days: 18,
    },
    Season {
        word: "newyear",
        month: 12,
        day: 26,
        length_days: 12,
    },
];

/// How an object's file name is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `hero-k3x9a2b`
    Plain,
    /// `report-20251103-k3x9a2b`
    Dated,
    /// `3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6` (the unique id follows as `-k3x9a2b`)
    Hash,
    /// `tmp-hero-k3x9a2b`
    Temp,
    /// `db-backup-20251103-k3x9a2b`
    Backup,
    /// `hero-k3x9a2b_old`
    Old,
    /// `hero-k3x9a2b_300x200` (renditions)
    SizeSuffix,
    /// `thumb_hero-k3x9a2b`
    Thumb,
    /// `christmas-hero-2025-k3x9a2b`
    Seasonal,
    /// `hero-k3x9a2b-latest`
    Latest,
    /// `ranker-k3x9a2b-v2.4.1`
    Semver,
}

/// Name styles independent of the cohort (used with probability `1 - name_signal`).
const NEUTRAL: &[(Style, f64)] = &[
    (Style::Plain, 0.40),
    (Style::Dated, 0.12),
    (Style::Hash, 0.08),
    (Style::Temp, 0.05),
    (Style::Backup, 0.04),
    (Style::Old, 0.04),
    (Style::SizeSuffix, 0.08),
    (Style::Thumb, 0.05),
    (Style::Seasonal, 0.05),
    (Style::Latest, 0.05),
    (Style::Semver, 0.04),
];

fn cohort_styles(cohort: Cohort) -> &'static [(Style, f64)] {
    match cohort {
        Cohort::Dead => &[
            (Style::Temp, 0.22),
            (Style::Backup, 0.20),
            (Style::Old, 0.20),
            (Style::Hash, 0.13),
            (Style::SizeSuffix, 0.15),
            (Style::Plain, 0.10),
        ],
        Cohort::OneOff => &[
            (Style::Temp, 0.30),
            (Style::Hash, 0.25),
            (Style::SizeSuffix, 0.15),
            (Style::Dated, 0.15),
            (Style::Plain, 0.15),
        ],
        Cohort::Yearly => &[(Style::Seasonal, 0.92), (Style::Plain, 0.08)],
        Cohort::Popular => &[
            (Style::Latest, 0.30),
            (Style::Plain, 0.40),
            (Style::Thumb, 0.15),
            (Style::Semver, 0.15),
        ],
        Cohort::Monthly => &[(Style::Dated, 0.50), (Style::Plain, 0.30), (Style::Latest, 0.20)],
        Cohort::Weekly => &[(Style::Plain, 0.40), (Style::Latest, 0.30), (Style::Dated, 0.30)],
        Cohort::Rescan => &[(Style::Plain, 0.55), (Style::Dated, 0.30), (Style::Hash, 0.15)],
    }
}

fn pick_style(table: &[(Style, f64)], rng: &mut SmallRng) -> Style {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (s, w) in table {
        if x < *w {
            return *s;
        }
        x -= w;
    }
    table[0].0
}

/// Unique id of object `index`: a letter and six base-36 characters, a bijection of the index (so keys never
/// collide) that looks random. Starting with a letter keeps digit runs from merging into dates or years.
pub(crate) fn unique_id(index: u32, seed: u64, out: &mut String) {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    const M: u64 = 26 * 36u64.pow(6);
    // 1_000_000_007 is prime and coprime with M = 2^13 * 3^12 * 13, so i -> i * P + c (mod M) is a bijection.
    let v = (u64::from(index) * 1_000_000_007 + splitmix64(seed) % M) % M;
    let mut rest = v % 36u64.pow(6);
    out.push((b'a' + (v / 36u64.pow(6)) as u8) as char);
    let mut digits = [0u8; 6];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(rest % 36) as usize];
        rest /= 36;
    }
    for d in digits {
        out.push(d as char);
    }
}

fn push_date(out: &mut String, t: i64) {
    use std::fmt::Write as _;
    let (y, m, d) = reprieve_core::time::civil_from_days(t.div_euclid(86_400));
    let _ = write!(out, "{y:04}{m:02}{d:02}");
}

/// Facts a name is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameInput {
    pub index: u32,
    pub seed: u64,
    pub cohort: Cohort,
    pub theme: Theme,
    pub ext: u8,
    pub created: i64,
    /// Season of a yearly object (index into [`SEASONS`]).
    pub season: u8,
}

/// Appends `{name}.{ext}` to `out`.
pub(crate) fn push_file_name(input: &NameInput, name_signal: f64, rng: &mut SmallRng, out: &mut String) {
    use std::fmt::Write as _;
    let style = if rng.random::<f64>() < name_signal {
        pick_style(cohort_styles(input.cohort), rng)
    } else {
        pick_style(NEUTRAL, rng)
    };
    let words = input.theme.words();
    let word = words[rng.random_range(0..words.len())];
    let ext = &EXTS[usize::from(input.ext)];
    let is_raster = matches!(ext.ext, "jpg" | "png" | "webp" | "gif");
    match style {
        Style::Plain => {
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
        }
        Style::Dated => {
            out.push_str(word);
            out.push('-');
            push_date(out, input.created);
            out.push('-');
            unique_id(input.index, input.seed, out);
        }
        Style::Hash => {
            let a = splitmix64(input.seed ^ u64::from(input.index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let b = splitmix64(a);
            let _ = write!(out, "{a:016x}{b:016x}-");
            unique_id(input.index, input.seed, out);
        }
        Style::Temp => {
            const TEMP: [&str; 5] = ["tmp", "temp", "scratch", "draft", "wip"];
            out.push_str(TEMP[rng.random_range(0..TEMP.len())]);
            out.push('-');
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
        }
        Style::Backup => {
            const BACKUP: [&str; 4] = ["backup", "bak", "dump", "copy"];
            out.push_str(word);
            out.push('-');
            out.push_str(BACKUP[rng.random_range(0..BACKUP.len())]);
            out.push('-');
            push_date(out, input.created);
            out.push('-');
            unique_id(input.index, input.seed, out);
        }
        Style::Old => {
            const OLD: [&str; 4] = ["old", "orig", "legacy", "unused"];
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
            out.push('_');
            out.push_str(OLD[rng.random_range(0..OLD.len())]);
        }
        Style::SizeSuffix if is_raster => {
            const SIZES: [&str; 6] = ["_300x200", "_150x150", "-1024x768", "_640x480", "-800x600", "@2x"];
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
            out.push_str(SIZES[rng.random_range(0..SIZES.len())]);
        }
        Style::Thumb if is_raster => {
            out.push_str("thumb_");
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
        }
        Style::SizeSuffix | Style::Thumb => {
            // Renditions only exist for raster images; other media get a plain name.
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
        }
        Style::Seasonal => {
            let season = if input.cohort == Cohort::Yearly {
                SEASONS[usize::from(input.season)].word
            } else {
                SEASONS[rng.random_range(0..SEASONS.len())].word
            };
            let year = reprieve_core::time::year_of(input.created);
            let _ = write!(out, "{season}-{word}-{year}-");
            unique_id(input.index, input.seed, out);
        }
        Style::Latest => {
            const LATEST: [&str; 3] = ["latest", "current", "stable"];
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
            out.push('-');
            out.push_str(LATEST[rng.random_range(0..LATEST.len())]);
        }
        Style::Semver => {
            out.push_str(word);
            out.push('-');
            unique_id(input.index, input.seed, out);
            let _ = write!(
                out,
                "-v{}.{}.{}",
                rng.random_range(0..5u32),
                rng.random_range(0..20u32),
                rng.random_range(0..10u32)
            );
        }
    }
    out.push('.');
    out.push_str(ext.ext);
}

/// The splitmix64 finaliser: a bijective 64-bit mixer.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use reprieve_core::naming::name_signals;

    #[test]
    fn ids_are_unique_and_start_with_a_letter() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..50_000u32 {
            let mut s = String::new();
            unique_id(i, 42, &mut s);
            assert_eq!(s.len(), 7);
            assert!(s.as_bytes()[0].is_ascii_lowercase());
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn names_carry_the_intended_signals() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut dead_flagged = 0;
        let mut yearly_seasonal = 0;
        for i in 0..500u32 {
            for cohort in [Cohort::Dead, Cohort::Yearly] {
                let mut name = String::from("cdn/batch001/");
                let input = NameInput {
                    index: i,
                    seed: 7,
                    cohort,
                    theme: Theme::Images,
                    ext: 0,
                    created: 1_700_000_000,
                    season: 6,
                };
                push_file_name(&input, 1.0, &mut rng, &mut name);
                let s = name_signals(&name, None);
                assert_eq!(s.media, Some(reprieve_core::naming::MediaKind::Image), "{name}");
                match cohort {
                    Cohort::Dead => {
                        dead_flagged += usize::from(s.temp || s.backup || s.old || s.hash_like || s.size_suffix)
                    }
                    _ => yearly_seasonal += usize::from(s.seasonal),
                }
            }
        }
        assert!(dead_flagged > 420, "{dead_flagged}");
        assert!(yearly_seasonal > 420, "{yearly_seasonal}");
    }
}
