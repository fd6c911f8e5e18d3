//! `naming` as it was before the allocation-free rewrite (reprieve-features-v3), kept as the reference the
//! rewrite is tested against.

use reprieve_core::naming::{MediaKind, NameSignals, TagShape};

/// Seasonal words with the calendar date (month, day) their campaigns lead up to.
const SEASON_ANCHORS: &[(&str, (u8, u8))] = &[
    ("newyear", (1, 1)),
    ("lunar", (2, 1)),
    ("valentine", (2, 14)),
    ("valentines", (2, 14)),
    ("spring", (3, 20)),
    ("easter", (4, 5)),
    ("summer", (6, 21)),
    ("backtoschool", (9, 1)),
    ("autumn", (9, 22)),
    ("fall", (9, 22)),
    ("halloween", (10, 31)),
    ("diwali", (11, 1)),
    ("thanksgiving", (11, 25)),
    ("blackfriday", (11, 27)),
    ("black", (11, 27)),
    ("cybermonday", (11, 30)),
    ("hanukkah", (12, 15)),
    ("winter", (12, 21)),
    ("christmas", (12, 25)),
    ("xmas", (12, 25)),
];

const TEMP_WORDS: &[&str] = &[
    "tmp", "temp", "scratch", "cache", "staging", "draft", "test", "debug", "wip",
];
const BACKUP_WORDS: &[&str] = &["backup", "backups", "bak", "bkp", "snapshot", "snap", "dump", "copy"];
const OLD_WORDS: &[&str] = &[
    "old",
    "archive",
    "archived",
    "deprecated",
    "legacy",
    "orig",
    "original",
    "unused",
    "obsolete",
    "previous",
];
const THUMB_WORDS: &[&str] = &[
    "thumb",
    "thumbs",
    "thumbnail",
    "thumbnails",
    "preview",
    "small",
    "icon",
    "tn",
];
const LATEST_WORDS: &[&str] = &["latest", "current", "stable", "main", "master", "prod", "production"];
const SEASONAL_WORDS: &[&str] = &[
    "christmas",
    "xmas",
    "halloween",
    "easter",
    "thanksgiving",
    "blackfriday",
    "black",
    "cybermonday",
    "valentine",
    "valentines",
    "newyear",
    "holiday",
    "holidays",
    "summer",
    "winter",
    "spring",
    "autumn",
    "fall",
    "diwali",
    "ramadan",
    "eid",
    "hanukkah",
    "lunar",
    "backtoschool",
    "season",
    "seasonal",
];

fn media_from_extension(ext: &str) -> Option<MediaKind> {
    use MediaKind::*;
    Some(match ext {
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "avif" | "heic" | "heif" | "bmp" | "tif" | "tiff" | "ico" | "jxl"
        | "raw" | "cr2" | "nef" | "dng" | "xbm" => Image,
        "svg" | "eps" | "ai" => VectorImage,
        "mp4" | "mov" | "webm" | "mkv" | "avi" | "m4v" | "mpg" | "mpeg" | "ts" | "m3u8" | "mp3" | "wav" | "flac"
        | "ogg" => Video,
        "pdf" | "doc" | "docx" | "ppt" | "pptx" | "xls" | "xlsx" | "odt" | "txt" | "md" | "rtf" => Document,
        "zip" | "tar" | "tgz" | "gz" | "bz2" | "xz" | "zst" | "7z" | "rar" => Archive,
        "qcow2" | "vmdk" | "vhd" | "vhdx" | "img" | "iso" | "ova" | "ovf" | "ami" | "vdi" => DiskImage,
        "pt" | "pth" | "onnx" | "safetensors" | "ckpt" | "h5" | "pb" | "tflite" | "gguf" | "pkl" | "joblib" | "bin" => {
            ModelWeights
        }
        "html" | "htm" | "css" | "js" | "mjs" | "map" | "woff" | "woff2" | "ttf" | "otf" | "eot" | "php" | "asp"
        | "aspx" | "jsp" | "cgi" => Web,
        "csv" | "json" | "parquet" | "avro" | "orc" | "nc" | "hdf" | "hdf5" | "xml" | "yaml" | "yml" | "jsonl"
        | "ndjson" | "dat" | "geojson" | "tsv" => Data,
        _ => return None,
    })
}

fn media_from_content_type(content_type: &str) -> Option<MediaKind> {
    let ct = content_type.trim().to_ascii_lowercase();
    let (top, sub) = ct.split_once('/')?;
    let sub = sub.split(';').next().unwrap_or("").trim();
    Some(match top {
        "image" if sub.starts_with("svg") => MediaKind::VectorImage,
        "image" => MediaKind::Image,
        "video" | "audio" => MediaKind::Video,
        "text" if sub == "html" || sub == "css" || sub == "javascript" => MediaKind::Web,
        "text" => MediaKind::Document,
        "application" if sub.contains("vnd.oci.image") || sub.contains("vnd.docker.distribution") => {
            MediaKind::ContainerImage
        }
        "application" if sub == "pdf" || sub.contains("officedocument") || sub == "msword" => MediaKind::Document,
        "application" if sub == "zip" || sub == "gzip" || sub == "x-tar" => MediaKind::Archive,
        "application" if sub == "json" || sub.ends_with("+json") || sub == "xml" => MediaKind::Data,
        "application" if sub == "javascript" => MediaKind::Web,
        _ => return None,
    })
}

fn is_year(token: &str) -> Option<u16> {
    if token.len() == 4 && token.bytes().all(|b| b.is_ascii_digit()) {
        let y: u16 = token.parse().ok()?;
        if (1990..=2099).contains(&y) {
            return Some(y);
        }
    }
    None
}

/// `20190501` or `2019-05-01`-style date: returns its year.
fn date_year(token: &str) -> Option<u16> {
    let digits: Vec<u8> = token.bytes().filter(u8::is_ascii_digit).collect();
    let separators_ok = token
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.');
    if digits.len() != 8 || !separators_ok {
        return None;
    }
    let s = std::str::from_utf8(&digits).ok()?;
    let year = is_year(&s[..4])?;
    let month: u8 = s[4..6].parse().ok()?;
    let day: u8 = s[6..8].parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(year)
}

fn is_size_suffix(token: &str) -> bool {
    // "300x200", "@2x", "1024w"
    if let Some((w, h)) = token.split_once('x') {
        let num = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
        if num(w) && num(h) {
            return true;
        }
    }
    matches!(token, "@2x" | "@3x" | "2x" | "3x")
        || (token.len() >= 3 && token.ends_with('w') && token[..token.len() - 1].bytes().all(|b| b.is_ascii_digit()))
}

fn is_hash_like(token: &str) -> bool {
    let hex = token.bytes().all(|b| b.is_ascii_hexdigit());
    let has_digit = token.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = token.bytes().any(|b| b.is_ascii_alphabetic());
    (token.len() >= 16 && hex && has_digit && has_alpha)
        || (token.len() >= 24 && token.bytes().all(|b| b.is_ascii_alphanumeric()) && has_digit && has_alpha)
}

fn is_semver(token: &str) -> bool {
    let t = token.strip_prefix('v').unwrap_or(token);
    let core = t.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads the signals off `key` (and `content_type`, when the key has no telling extension).
pub fn name_signals(key: &str, content_type: Option<&str>) -> NameSignals {
    let mut s = NameSignals::default();
    // Container images are `repository@sha256:...` (optionally with `:tag`).
    let (path, digest) = match key.split_once("@sha256:") {
        Some((repo, digest)) => (repo, Some(digest)),
        None => (key, None),
    };
    let trimmed = path.trim_end_matches('/');
    s.depth = trimmed.matches('/').count() as u32;
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    s.name_len = name.len() as u32;
    let lower = name.to_ascii_lowercase();
    let (stem, ext) = match lower.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 12 => (stem, ext),
        _ => (lower.as_str(), ""),
    };
    s.media = if digest.is_some() {
        Some(MediaKind::ContainerImage)
    } else {
        media_from_extension(ext).or_else(|| content_type.and_then(media_from_content_type))
    };
    // Dotted tokens (semver, dates with dots) are judged before splitting on dots.
    s.semver = stem.split(['_', '-', ' ', '+', '=', ',', '(', ')', ':']).any(is_semver)
        || stem.split(['_', ' ', '+', '=', ',', '(', ')', ':']).any(is_semver);
    let date_runs = stem.split(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '_' | '.')));
    for run in date_runs {
        if let Some(y) = date_year(run.trim_matches(|c: char| !c.is_ascii_digit())) {
            s.date = true;
            s.year = s.year.max(Some(y));
        }
    }
    let dir_lower = trimmed[..trimmed.len() - name.len()].to_ascii_lowercase();
    let directory_tokens = dir_lower.split(|c: char| !c.is_ascii_alphanumeric());
    let name_tokens = stem.split(|c: char| !c.is_ascii_alphanumeric() && c != '@');
    for (in_name, token) in name_tokens
        .map(|t| (true, t))
        .chain(directory_tokens.map(|t| (false, t)))
    {
        if token.is_empty() {
            continue;
        }
        let word = token.trim_start_matches('@');
        s.temp |= TEMP_WORDS.contains(&word);
        s.backup |= BACKUP_WORDS.contains(&word);
        s.old |= OLD_WORDS.contains(&word);
        s.latest |= LATEST_WORDS.contains(&word);
        s.seasonal |= SEASONAL_WORDS.contains(&word);
        if let Some(&(_, anchor)) = SEASON_ANCHORS.iter().find(|(w, _)| *w == word) {
            s.season_anchor = Some(s.season_anchor.map_or(anchor, |a| a.min(anchor)));
        }
        if let Some(y) = is_year(word) {
            s.year = s.year.max(Some(y));
        }
        if in_name {
            s.thumb |= THUMB_WORDS.contains(&word);
            s.size_suffix |= is_size_suffix(token);
            s.hash_like |= is_hash_like(word);
        }
    }
    // Tags on container images: `repo:tag` in the last segment.
    if let Some((_, tag)) = name.split_once(':') {
        let tag = tag.to_ascii_lowercase();
        s.latest |= LATEST_WORDS.contains(&tag.as_str());
        s.semver |= is_semver(&tag);
    }
    s.hash_like |= digest.is_some();
    s
}

/// The shape of one container-image tag. A tag may have several (`main-20240115`: branch and date).

const BRANCH_WORDS: &[&str] = &[
    "main", "master", "develop", "dev", "trunk", "feature", "feat", "fix", "bugfix", "hotfix", "release", "pr", "mr",
    "branch", "nightly", "snapshot", "edge",
];

fn is_hex_sha(token: &str) -> bool {
    (7..=64).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_hexdigit())
        && token.bytes().any(|b| b.is_ascii_digit())
        && token.bytes().any(|b| b.is_ascii_alphabetic())
}

fn is_build_number(token: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 7 && s.bytes().all(|b| b.is_ascii_digit());
    digits(token)
        || ["build", "b", "r", "ci", "run", "rc"].iter().any(|p| {
            token
                .strip_prefix(p)
                .is_some_and(|rest| digits(rest.trim_start_matches(['-', '_', '.'])))
        })
}

/// Reads the shape of a container-image tag (case-insensitive; an empty tag has no shape).
pub fn tag_shape(tag: &str) -> TagShape {
    let lower = tag.trim().to_ascii_lowercase();
    let mut s = TagShape::default();
    if lower.is_empty() {
        return s;
    }
    s.latest = LATEST_WORDS.contains(&lower.as_str());
    s.semver = is_semver(&lower) || lower.split(['_', '+']).any(is_semver);
    let tokens: Vec<&str> = lower.split(['-', '_', '.', '+']).filter(|t| !t.is_empty()).collect();
    s.branch = !s.latest && tokens.first().is_some_and(|t| BRANCH_WORDS.contains(t))
        || (lower != "main" && lower != "master" && tokens.iter().any(|t| *t == "main" || *t == "master"));
    if s.latest && (lower == "main" || lower == "master") {
        // `main` is both a branch and a pointer that stays; count it as both.
        s.branch = true;
    }
    s.sha_like = is_hex_sha(&lower) || tokens.last().is_some_and(|t| is_hex_sha(t) && tokens.len() > 1);
    s.date = date_year(&lower).is_some()
        || lower
            .split(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
            .any(|run| date_year(run.trim_matches(|c: char| !c.is_ascii_digit())).is_some());
    s.build_number = !s.date
        && !s.semver
        && (is_build_number(&lower)
            || tokens
                .last()
                .is_some_and(|t| is_build_number(t) && tokens.len() > 1 && !s.semver));
    s
}
