//! What an object's name says about it: media type, depth, and the tokens people put in names of files they
//! mean to keep (`latest`, `v1.2.3`, `christmas`) or mean to forget (`tmp`, `backup`, `old`, `_300x200`).
//!
//! Container-image tags have their own shapes ([`tag_shape`]): release versions and `latest`-like pointers are
//! meant to stay, branch builds, commit hashes, build numbers and date stamps come and go.

use serde::{Deserialize, Serialize};

/// Media family of an object, from its extension (or its content type, or a container-image digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaKind {
    Image,
    VectorImage,
    Video,
    Document,
    Archive,
    DiskImage,
    ModelWeights,
    Web,
    Data,
    ContainerImage,
    Other,
}

/// Signals read off a key.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct NameSignals {
    pub media: Option<MediaKind>,
    /// Number of `/`-separated directories above the object.
    pub depth: u32,
    /// Length of the last path segment, in bytes.
    pub name_len: u32,
    pub temp: bool,
    pub backup: bool,
    pub old: bool,
    pub thumb: bool,
    /// A rendition size suffix such as `_300x200`, `-150x150` or `@2x`.
    pub size_suffix: bool,
    /// A full date (`2019-05-01`, `20190501`) in the name.
    pub date: bool,
    /// A plausible year (1990-2099) in the name, the largest one if several.
    pub year: Option<u16>,
    /// A long hexadecimal or hash-like token (content-addressed names, digests, UUIDs).
    pub hash_like: bool,
    /// A semantic-version token (`1.2.3`, `v2.0.0-rc1`).
    pub semver: bool,
    /// `latest`, `current`, `stable`, `main` or `master`: a pointer meant to stay.
    pub latest: bool,
    /// A seasonal or campaign word (`christmas`, `halloween`, `summer`, `black-friday`, ...).
    pub seasonal: bool,
    /// The calendar date (month, day) the seasonal word points at, for words with a fixed one (`christmas`: Dec 25,
    /// `valentines`: Feb 14, `summer`: Jun 21; movable feasts at a typical date: `easter` Apr 5). The earliest in
    /// the year wins when a name has several; `None` for words without a date (`holiday`, `ramadan`).
    pub season_anchor: Option<(u8, u8)>,
}

/// Seasonal words with the calendar date (month, day) their campaigns lead up to.
#[cfg_attr(not(test), allow(dead_code))]
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

// The word lists. `word_class` (the one the code uses) is checked against them by a test.
#[cfg_attr(not(test), allow(dead_code))]
const TEMP_WORDS: &[&str] = &[
    "tmp", "temp", "scratch", "cache", "staging", "draft", "test", "debug", "wip",
];
#[cfg_attr(not(test), allow(dead_code))]
const BACKUP_WORDS: &[&str] = &["backup", "backups", "bak", "bkp", "snapshot", "snap", "dump", "copy"];
#[cfg_attr(not(test), allow(dead_code))]
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
#[cfg_attr(not(test), allow(dead_code))]
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
#[cfg_attr(not(test), allow(dead_code))]
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

fn media_from_extension(ext: &[u8]) -> Option<MediaKind> {
    use MediaKind::*;
    Some(match ext {
        b"jpg" | b"jpeg" | b"png" | b"gif" | b"webp" | b"avif" | b"heic" | b"heif" | b"bmp" | b"tif" | b"tiff"
        | b"ico" | b"jxl" | b"raw" | b"cr2" | b"nef" | b"dng" | b"xbm" => Image,
        b"svg" | b"eps" | b"ai" => VectorImage,
        b"mp4" | b"mov" | b"webm" | b"mkv" | b"avi" | b"m4v" | b"mpg" | b"mpeg" | b"ts" | b"m3u8" | b"mp3" | b"wav"
        | b"flac" | b"ogg" => Video,
        b"pdf" | b"doc" | b"docx" | b"ppt" | b"pptx" | b"xls" | b"xlsx" | b"odt" | b"txt" | b"md" | b"rtf" => Document,
        b"zip" | b"tar" | b"tgz" | b"gz" | b"bz2" | b"xz" | b"zst" | b"7z" | b"rar" => Archive,
        b"qcow2" | b"vmdk" | b"vhd" | b"vhdx" | b"img" | b"iso" | b"ova" | b"ovf" | b"ami" | b"vdi" => DiskImage,
        b"pt" | b"pth" | b"onnx" | b"safetensors" | b"ckpt" | b"h5" | b"pb" | b"tflite" | b"gguf" | b"pkl"
        | b"joblib" | b"bin" => ModelWeights,
        b"html" | b"htm" | b"css" | b"js" | b"mjs" | b"map" | b"woff" | b"woff2" | b"ttf" | b"otf" | b"eot"
        | b"php" | b"asp" | b"aspx" | b"jsp" | b"cgi" => Web,
        b"csv" | b"json" | b"parquet" | b"avro" | b"orc" | b"nc" | b"hdf" | b"hdf5" | b"xml" | b"yaml" | b"yml"
        | b"jsonl" | b"ndjson" | b"dat" | b"geojson" | b"tsv" => Data,
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

/// Words that mean something in a name, as bits of a [`WordClass`].
const TEMP: u8 = 1;
const BACKUP: u8 = 1 << 1;
const OLD: u8 = 1 << 2;
const THUMB: u8 = 1 << 3;
const LATEST: u8 = 1 << 4;
const SEASONAL: u8 = 1 << 5;

/// The longest word of any word list (`thanksgiving`, `backtoschool`): longer tokens are no word.
const LONGEST_WORD: usize = 12;

/// Which word lists a (lower-case) token is in, and its seasonal anchor: one `match` instead of a scan of every
/// list ([`TEMP_WORDS`], [`BACKUP_WORDS`], [`OLD_WORDS`], [`THUMB_WORDS`], [`LATEST_WORDS`], [`SEASONAL_WORDS`],
/// [`SEASON_ANCHORS`]; a test checks that it agrees with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WordClass {
    lists: u8,
    anchor: Option<(u8, u8)>,
}

fn word_class(word: &[u8]) -> WordClass {
    let (lists, anchor) = match word {
        b"tmp" | b"temp" | b"scratch" | b"cache" | b"staging" | b"draft" | b"test" | b"debug" | b"wip" => (TEMP, None),
        b"backup" | b"backups" | b"bak" | b"bkp" | b"snapshot" | b"snap" | b"dump" | b"copy" => (BACKUP, None),
        b"old" | b"archive" | b"archived" | b"deprecated" | b"legacy" | b"orig" | b"original" | b"unused"
        | b"obsolete" | b"previous" => (OLD, None),
        b"thumb" | b"thumbs" | b"thumbnail" | b"thumbnails" | b"preview" | b"small" | b"icon" | b"tn" => (THUMB, None),
        b"latest" | b"current" | b"stable" | b"main" | b"master" | b"prod" | b"production" => (LATEST, None),
        b"newyear" => (SEASONAL, Some((1, 1))),
        b"lunar" => (SEASONAL, Some((2, 1))),
        b"valentine" | b"valentines" => (SEASONAL, Some((2, 14))),
        b"spring" => (SEASONAL, Some((3, 20))),
        b"easter" => (SEASONAL, Some((4, 5))),
        b"summer" => (SEASONAL, Some((6, 21))),
        b"backtoschool" => (SEASONAL, Some((9, 1))),
        b"autumn" | b"fall" => (SEASONAL, Some((9, 22))),
        b"halloween" => (SEASONAL, Some((10, 31))),
        b"diwali" => (SEASONAL, Some((11, 1))),
        b"thanksgiving" => (SEASONAL, Some((11, 25))),
        b"blackfriday" | b"black" => (SEASONAL, Some((11, 27))),
        b"cybermonday" => (SEASONAL, Some((11, 30))),
        b"hanukkah" => (SEASONAL, Some((12, 15))),
        b"winter" => (SEASONAL, Some((12, 21))),
        b"christmas" | b"xmas" => (SEASONAL, Some((12, 25))),
        b"holiday" | b"holidays" | b"ramadan" | b"eid" | b"season" | b"seasonal" => (SEASONAL, None),
        _ => (0, None),
    };
    WordClass { lists, anchor }
}

fn all_digits(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

fn is_year(token: &[u8]) -> Option<u16> {
    if let [a, b, c, d] = *token
        && all_digits(token)
    {
        let y = [a, b, c, d].iter().fold(0u16, |y, &x| y * 10 + u16::from(x - b'0'));
        if (1990..=2099).contains(&y) {
            return Some(y);
        }
    }
    None
}

/// `20190501` or `2019-05-01`-style date: returns its year.
fn date_year(token: &[u8]) -> Option<u16> {
    let mut digits = [0u8; 8];
    let mut n = 0;
    for &b in token {
        if b.is_ascii_digit() {
            if n == digits.len() {
                return None;
            }
            digits[n] = b;
            n += 1;
        } else if !matches!(b, b'-' | b'_' | b'.') {
            return None;
        }
    }
    if n != digits.len() {
        return None;
    }
    let year = is_year(&digits[..4])?;
    let two = |i: usize| (digits[i] - b'0') * 10 + (digits[i + 1] - b'0');
    ((1..=12).contains(&two(4)) && (1..=31).contains(&two(6))).then_some(year)
}

/// `run` without its leading and trailing non-digits.
fn trim_non_digits(run: &[u8]) -> &[u8] {
    let start = run.iter().position(u8::is_ascii_digit).unwrap_or(run.len());
    let end = run.iter().rposition(u8::is_ascii_digit).map_or(start, |i| i + 1);
    &run[start..end]
}

/// Whether a date (see [`date_year`]) is in a run of digits and `-_.` of `text` (a run without its leading and
/// trailing separators); the largest year of those dates.
fn dates_in_runs(text: &[u8]) -> Option<u16> {
    // A date has eight digits: most names have fewer, and counting them is cheaper than splitting into runs.
    if text.iter().filter(|b| b.is_ascii_digit()).count() < 8 {
        return None;
    }
    text.split(|&b| !(b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')))
        .filter(|run| run.len() >= 8)
        .filter_map(|run| date_year(trim_non_digits(run)))
        .max()
}

fn is_size_suffix(token: &[u8]) -> bool {
    // "300x200", "@2x", "1024w"
    if let Some(x) = token.iter().position(|&b| b == b'x') {
        let num = |s: &[u8]| !s.is_empty() && s.len() <= 5 && all_digits(s);
        if num(&token[..x]) && num(&token[x + 1..]) {
            return true;
        }
    }
    matches!(token, b"@2x" | b"@3x" | b"2x" | b"3x")
        || (token.len() >= 3 && token.ends_with(b"w") && all_digits(&token[..token.len() - 1]))
}

fn is_hash_like(token: &[u8]) -> bool {
    if token.len() < 16 {
        return false;
    }
    let (mut hex, mut alnum, mut has_digit, mut has_alpha) = (true, true, false, false);
    for &b in token {
        hex &= b.is_ascii_hexdigit();
        alnum &= b.is_ascii_alphanumeric();
        has_digit |= b.is_ascii_digit();
        has_alpha |= b.is_ascii_alphabetic();
    }
    has_digit && has_alpha && (hex || (token.len() >= 24 && alnum))
}

fn is_semver(token: &[u8]) -> bool {
    let t = token.strip_prefix(b"v").unwrap_or(token);
    let core = t.split(|&b| b == b'-' || b == b'+').next().unwrap_or(&[]);
    let mut parts = 0;
    for part in core.split(|&b| b == b'.') {
        parts += 1;
        if parts > 4 || part.is_empty() || part.len() > 6 || !all_digits(part) {
            return false;
        }
    }
    parts >= 2
}

/// What a token of a name is made of: words are all letters and years all digits, so most tokens need one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenShape {
    /// ASCII letters only.
    Letters,
    /// ASCII digits only.
    Digits,
    /// ASCII letters and digits.
    Mixed,
    /// Contains an `@` (only in the name's own tokens, where `@` does not split).
    WithAt,
}

/// A full date has eight digits (see [`date_year`]).
const DATE_DIGITS: usize = 8;

/// Calls `each` with every non-empty run of ASCII letters, digits and `also` (0 for none) in `text` and its shape,
/// in one pass: the tokens of `text.split(|&b| !(b.is_ascii_alphanumeric() || b == also))` without the empty ones.
/// Returns the number of digits in `text`.
fn for_each_token(text: &[u8], also: u8, mut each: impl FnMut(&[u8], TokenShape)) -> usize {
    const LETTER: u8 = 1;
    const DIGIT: u8 = 2;
    const ALSO: u8 = 4;
    let mut emit = |token: &[u8], seen: u8| {
        if !token.is_empty() {
            let shape = match seen {
                LETTER => TokenShape::Letters,
                DIGIT => TokenShape::Digits,
                3 => TokenShape::Mixed,
                _ => TokenShape::WithAt,
            };
            each(token, shape);
        }
    };
    let mut digits = 0;
    let mut start = 0;
    let mut seen = 0u8;
    for (i, &b) in text.iter().enumerate() {
        let class = match b {
            b'a'..=b'z' | b'A'..=b'Z' => LETTER,
            b'0'..=b'9' => DIGIT,
            _ if b == also && also != 0 => ALSO,
            _ => 0,
        };
        digits += usize::from(class == DIGIT);
        if class != 0 {
            seen |= class;
        } else {
            emit(&text[start..i], seen);
            start = i + 1;
            seen = 0;
        }
    }
    emit(&text[start..], seen);
    digits
}

impl NameSignals {
    /// A token that may be a word of the lists (lower case; in the object's own name or in a directory).
    fn seen_word(&mut self, word: &[u8], in_name: bool) {
        if word.len() <= LONGEST_WORD {
            let class = word_class(word);
            self.temp |= class.lists & TEMP != 0;
            self.backup |= class.lists & BACKUP != 0;
            self.old |= class.lists & OLD != 0;
            self.latest |= class.lists & LATEST != 0;
            self.seasonal |= class.lists & SEASONAL != 0;
            self.thumb |= in_name && class.lists & THUMB != 0;
            if let Some(anchor) = class.anchor {
                self.season_anchor = Some(self.season_anchor.map_or(anchor, |a| a.min(anchor)));
            }
        }
    }

    /// A token that may be a year.
    fn seen_digits(&mut self, token: &[u8]) {
        if let Some(y) = is_year(token) {
            self.year = self.year.max(Some(y));
        }
    }
}

/// Names up to this long are lower-cased on the stack.
const STACK_NAME: usize = 128;

/// Reads the signals off `key` (and `content_type`, when the key has no telling extension).
///
/// One pass over each token of the name, without allocating for names up to 128 bytes.
pub fn name_signals(key: &str, content_type: Option<&str>) -> NameSignals {
    let mut s = NameSignals::default();
    // Container images are `repository@sha256:...` (optionally with `:tag`): the first `@sha256:` splits them.
    // The path before it: its directory separators (counted without a branch per byte) and the last of them.
    let bytes = key.as_bytes();
    let digest_at = crate::prefix::image_repository(key).map(str::len);
    let path_end = digest_at.unwrap_or(bytes.len());
    let path = &bytes[..path_end];
    let mut slashes: u32 = path.iter().map(|&b| u32::from(b == b'/')).sum();
    let last_slash = path.iter().rposition(|&b| b == b'/');
    // Trailing separators end no directory.
    let mut end = path_end;
    while end > 0 && bytes[end - 1] == b'/' {
        end -= 1;
        slashes -= 1;
    }
    let trimmed = &key[..end];
    s.depth = slashes;
    let last_slash = if end == path_end {
        last_slash
    } else {
        trimmed.rfind('/')
    };
    let name = last_slash.map_or(trimmed, |i| &trimmed[i + 1..]);
    s.name_len = name.len() as u32;
    let mut stack = [0u8; STACK_NAME];
    let heap;
    let lower: &[u8] = match stack.get_mut(..name.len()) {
        Some(buf) => {
            for (lower, b) in buf.iter_mut().zip(name.bytes()) {
                *lower = b.to_ascii_lowercase();
            }
            buf
        }
        None => {
            heap = name.to_ascii_lowercase();
            heap.as_bytes()
        }
    };
    let (stem, ext): (&[u8], &[u8]) = match lower.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 && lower.len() - dot - 1 <= 12 => (&lower[..dot], &lower[dot + 1..]),
        _ => (lower, &[]),
    };
    s.media = if digest_at.is_some() {
        Some(MediaKind::ContainerImage)
    } else {
        media_from_extension(ext).or_else(|| content_type.and_then(media_from_content_type))
    };
    // Dotted tokens (semver, dates with dots) are judged before splitting on dots; a version has a dot.
    if stem.contains(&b'.') {
        let with_dash = |b: &u8| matches!(b, b'_' | b'-' | b' ' | b'+' | b'=' | b',' | b'(' | b')' | b':');
        let without_dash = |b: &u8| matches!(b, b'_' | b' ' | b'+' | b'=' | b',' | b'(' | b')' | b':');
        s.semver = stem.split(with_dash).any(is_semver) || stem.split(without_dash).any(is_semver);
    }
    let stem_digits = for_each_token(stem, b'@', |token, shape| match shape {
        TokenShape::Letters => s.seen_word(token, true),
        TokenShape::Digits => s.seen_digits(token),
        // Words are all letters and years all digits: a mixed token can only be a size or a hash.
        TokenShape::Mixed => {
            s.size_suffix |= is_size_suffix(token);
            s.hash_like |= is_hash_like(token);
        }
        TokenShape::WithAt => {
            let start = token.iter().position(|&b| b != b'@').unwrap_or(token.len());
            let word = &token[start..];
            s.seen_word(word, true);
            s.seen_digits(word);
            s.size_suffix |= is_size_suffix(token);
            s.hash_like |= is_hash_like(word);
        }
    });
    // A date has eight digits: most names have fewer.
    if stem_digits >= DATE_DIGITS
        && let Some(y) = dates_in_runs(stem)
    {
        s.date = true;
        s.year = s.year.max(Some(y));
    }
    let directories = &trimmed.as_bytes()[..trimmed.len() - name.len()];
    for_each_token(directories, 0, |token, shape| match shape {
        // Lower-cased only when short enough to be a word.
        TokenShape::Letters if token.len() <= LONGEST_WORD => {
            let mut buf = [0u8; LONGEST_WORD];
            for (lower, b) in buf.iter_mut().zip(token) {
                *lower = b.to_ascii_lowercase();
            }
            s.seen_word(&buf[..token.len()], false);
        }
        TokenShape::Digits => s.seen_digits(token),
        _ => {}
    });
    // Tags on container images: `repo:tag` in the last segment.
    if let Some(colon) = lower.iter().position(|&b| b == b':') {
        let tag = &lower[colon + 1..];
        s.latest |= word_class(tag).lists & LATEST != 0;
        s.semver |= is_semver(tag);
    }
    s.hash_like |= digest_at.is_some();
    s
}

/// The shape of one container-image tag. A tag may have several (`main-20240115`: branch and date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagShape {
    /// A release version: `1.2.3`, `v2.0`, `1.25.3-alpine`.
    pub semver: bool,
    /// A pointer meant to stay: `latest`, `stable`, `prod`, ... (the same words as [`NameSignals::latest`]).
    pub latest: bool,
    /// A branch build: `main`, `develop`, `feature-x`, `pr-123`, `release-1.2`, `main-<sha>`.
    pub branch: bool,
    /// A commit hash: 7 to 64 hexadecimal digits with at least one letter and one digit (alone or as a suffix).
    pub sha_like: bool,
    /// A build number: all digits (short), or `build-123`, `b123`, `r42`, `ci-9876`.
    pub build_number: bool,
    /// A date stamp: `20240115`, `2024-01-15`, `2024.01.15` (alone or inside the tag).
    pub date: bool,
}

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
    s.semver = is_semver(lower.as_bytes()) || lower.split(['_', '+']).any(|t| is_semver(t.as_bytes()));
    let tokens: Vec<&str> = lower.split(['-', '_', '.', '+']).filter(|t| !t.is_empty()).collect();
    s.branch = !s.latest && tokens.first().is_some_and(|t| BRANCH_WORDS.contains(t))
        || (lower != "main" && lower != "master" && tokens.iter().any(|t| *t == "main" || *t == "master"));
    if s.latest && (lower == "main" || lower == "master") {
        // `main` is both a branch and a pointer that stays; count it as both.
        s.branch = true;
    }
    s.sha_like = is_hex_sha(&lower) || tokens.last().is_some_and(|t| is_hex_sha(t) && tokens.len() > 1);
    s.date = date_year(lower.as_bytes()).is_some() || dates_in_runs(lower.as_bytes()).is_some();
    s.build_number = !s.date
        && !s.semver
        && (is_build_number(&lower)
            || tokens
                .last()
                .is_some_and(|t| is_build_number(t) && tokens.len() > 1 && !s.semver));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_shapes() {
        let t = tag_shape("1.25.3-alpine");
        assert!(t.semver && !t.build_number && !t.branch, "{t:?}");
        assert!(tag_shape("v2.0").semver);
        assert!(tag_shape("latest").latest && !tag_shape("latest").branch);
        assert!(tag_shape("STABLE").latest);
        let t = tag_shape("main");
        assert!(t.latest && t.branch, "{t:?}");
        let t = tag_shape("feature-login-page");
        assert!(t.branch && !t.latest, "{t:?}");
        let t = tag_shape("main-3f2a9c0");
        assert!(t.branch && t.sha_like, "{t:?}");
        assert!(tag_shape("3f2a9c0d1e4b").sha_like);
        assert!(!tag_shape("deadbeef").sha_like, "no digit: a word, not a hash");
        assert!(tag_shape("1234").build_number);
        assert!(tag_shape("build-5521").build_number);
        assert!(tag_shape("20240115").date && !tag_shape("20240115").build_number);
        assert!(tag_shape("nightly-2024.01.15").date);
        assert_eq!(tag_shape(""), TagShape::default());
        assert_eq!(tag_shape("prod-canary"), TagShape::default(), "no rule matches");
    }

    #[test]
    fn seasonal_words_carry_their_dates() {
        let s = name_signals("cdn/campaigns/christmas-2019/banner.jpg", None);
        assert_eq!(s.season_anchor, Some((12, 25)));
        let s = name_signals("promo/valentines-sale_300x200.png", None);
        assert_eq!(s.season_anchor, Some((2, 14)));
        // A word without a fixed date is seasonal but has no anchor; every anchored word is a seasonal word.
        assert_eq!(name_signals("img/holiday-banner.png", None).season_anchor, None);
        assert!(
            SEASON_ANCHORS.iter().all(|(w, _)| SEASONAL_WORDS.contains(w)),
            "anchor words must be seasonal"
        );
    }

    #[test]
    fn reads_typical_names() {
        let s = name_signals("cdn/campaigns/christmas-2019/banner_300x200.jpg", None);
        assert_eq!(s.media, Some(MediaKind::Image));
        assert_eq!(s.depth, 3);
        assert!(s.seasonal && s.size_suffix);
        assert_eq!(s.year, Some(2019));

        let s = name_signals("backups/tmp/db-20190501.tar.gz", None);
        assert_eq!(s.media, Some(MediaKind::Archive));
        assert!(s.backup && s.temp && s.date);

        let s = name_signals("models/resnet/v2.1.0/weights.safetensors", None);
        assert_eq!(s.media, Some(MediaKind::ModelWeights));
        assert!(!s.semver, "semver in a directory is not the object's own tag");

        let s = name_signals("models/resnet-v2.1.0.onnx", None);
        assert!(s.semver);

        let s = name_signals("registry.example.com/team/app:latest@sha256:0123abcd", None);
        assert_eq!(s.media, Some(MediaKind::ContainerImage));
        assert!(s.latest && s.hash_like);

        let s = name_signals("u/3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6.png", None);
        assert!(s.hash_like);

        let s = name_signals("noext", Some("image/webp"));
        assert_eq!(s.media, Some(MediaKind::Image));
        assert_eq!(
            name_signals("", None),
            NameSignals {
                name_len: 0,
                ..NameSignals::default()
            }
        );
    }

    #[test]
    fn word_class_agrees_with_the_word_lists() {
        let lists: [(&[&str], u8); 6] = [
            (TEMP_WORDS, TEMP),
            (BACKUP_WORDS, BACKUP),
            (OLD_WORDS, OLD),
            (THUMB_WORDS, THUMB),
            (LATEST_WORDS, LATEST),
            (SEASONAL_WORDS, SEASONAL),
        ];
        let mut words: Vec<&str> = lists.iter().flat_map(|(l, _)| l.iter().copied()).collect();
        words.extend([
            "",
            "x",
            "tmpx",
            "xtmp",
            "Tmp",
            "2019",
            "christmass",
            "holidayss",
            "mainn",
            "ai",
            "png",
        ]);
        for word in words {
            let class = word_class(word.as_bytes());
            for (list, bit) in lists {
                assert_eq!(class.lists & bit != 0, list.contains(&word), "{word} in list {bit}");
            }
            let anchor = SEASON_ANCHORS.iter().find(|(w, _)| *w == word).map(|(_, a)| *a);
            assert_eq!(class.anchor, anchor, "{word}");
            assert!(word.len() <= LONGEST_WORD || class.lists == 0, "{word}");
        }
    }
}
