//! Prefixes ("directories", collections, image repositories) and their aggregated activity.
//!
//! Bulk re-scans hit whole prefixes after weeks of quiet; an object's own history cannot see them coming, its
//! siblings' can. [`PrefixAccumulator`] folds the members' [`HistoryStats`] into a [`PrefixActivity`].

use crate::history::HistoryStats;
use crate::record::PrefixActivity;
use crate::time::{DAY, UnixSeconds};

/// Fewest objects a prefix needs before "half of them were read on one day" counts as a bulk scan.
pub const MIN_OBJECTS_FOR_BULK_SCAN: u64 = 3;

/// The part of `key` before its first `@sha256:`: a container image's repository (with its tag, if any).
pub(crate) fn image_repository(key: &str) -> Option<&str> {
    // Almost no key has an `@`: say so in a few wide compares, 16 bytes at a time (without an early exit inside a
    // chunk, which would keep the compiler from vectorising), before searching for the `@` of a digest.
    let has_at = |chunk: &[u8]| chunk.iter().fold(false, |seen, &b| seen | (b == b'@'));
    if !key.as_bytes().chunks(16).any(has_at) {
        return None;
    }
    let mut from = 0;
    while let Some(i) = key[from..].find('@') {
        let at = from + i;
        if key[at..].starts_with("@sha256:") {
            return Some(&key[..at]);
        }
        from = at + 1;
    }
    None
}

fn path_part(key: &str) -> &str {
    // Container images: the repository is the path, the digest is the object.
    image_repository(key).unwrap_or(key)
}

/// The immediate parent prefix, with its trailing slash: `a/b/` for `a/b/c.png`, `` for `c.png`. For an image
/// `host/team/app@sha256:...` it is the repository `host/team/app/`.
pub fn parent_prefix(key: &str) -> String {
    let mut parent = String::new();
    push_parent_prefix(key, &mut parent);
    parent
}

/// Appends [`parent_prefix`] of `key` to `out`, without allocating.
pub fn push_parent_prefix(key: &str, out: &mut String) {
    if let Some(repo) = image_repository(key) {
        out.push_str(repo.split_once(':').map_or(repo, |(r, _)| r));
        out.push('/');
    } else if let Some(i) = key.rfind('/') {
        out.push_str(&key[..=i]);
    }
}

/// The top-level prefix, with its trailing slash: `a/` for `a/b/c.png`, `` for `c.png`.
pub fn top_prefix(key: &str) -> &str {
    let path = path_part(key);
    match path.find('/') {
        Some(i) => &key[..=i],
        None => "",
    }
}

/// Folds the histories of a prefix's objects into its activity.
#[derive(Debug, Clone)]
pub struct PrefixAccumulator {
    at: UnixSeconds,
    objects: u64,
    objects_read_30d: u64,
    reads_7d: u64,
    reads_30d: u64,
    last_read: Option<UnixSeconds>,
    objects_read_on_day: [u32; 128],
}

impl PrefixAccumulator {
    pub fn new(at: UnixSeconds) -> Self {
        Self {
            at,
            objects: 0,
            objects_read_30d: 0,
            reads_7d: 0,
            reads_30d: 0,
            last_read: None,
            objects_read_on_day: [0; 128],
        }
    }

    /// Adds one member object (whether or not it was ever read).
    pub fn add(&mut self, stats: &HistoryStats) {
        debug_assert_eq!(stats.at, self.at);
        self.objects += 1;
        self.reads_7d += u64::from(stats.window_counts[1]);
        self.reads_30d += u64::from(stats.window_counts[2]);
        if stats.window_counts[2] > 0 {
            self.objects_read_30d += 1;
        }
        self.last_read = self.last_read.max(stats.last);
        let mut bits = stats.day_bits;
        while bits != 0 {
            let day = bits.trailing_zeros() as usize;
            self.objects_read_on_day[day] += 1;
            bits &= bits - 1;
        }
    }

    pub fn finish(&self) -> PrefixActivity {
        let mut bulk_days = 0u32;
        let mut last_bulk: Option<UnixSeconds> = None;
        if self.objects >= MIN_OBJECTS_FOR_BULK_SCAN {
            for (day, &n) in self.objects_read_on_day.iter().enumerate() {
                if u64::from(n) * 2 >= self.objects {
                    bulk_days += 1;
                    if last_bulk.is_none() {
                        // Day `day` is [at - (day+1) days, at - day days): date it by its start.
                        last_bulk = Some(self.at - (day as i64 + 1) * DAY);
                    }
                }
            }
        }
        PrefixActivity {
            objects: self.objects,
            objects_read_30d: self.objects_read_30d,
            reads_7d: self.reads_7d,
            reads_30d: self.reads_30d,
            last_read: self.last_read,
            bulk_scan_days_128d: bulk_days,
            last_bulk_scan: last_bulk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(parent_prefix("a/b/c.png"), "a/b/");
        assert_eq!(parent_prefix("c.png"), "");
        assert_eq!(top_prefix("a/b/c.png"), "a/");
        assert_eq!(top_prefix("c.png"), "");
        assert_eq!(parent_prefix("host/team/app:1.0@sha256:ab"), "host/team/app/");
        assert_eq!(top_prefix("host/team/app@sha256:ab/x"), "host/");
        assert_eq!(parent_prefix("me@home/team/app@sha256:ab"), "me@home/team/app/");
        assert_eq!(top_prefix("me@home/team/app@sha256:ab"), "me@home/");
        assert_eq!(parent_prefix("a/b@sha25/c@x"), "a/b@sha25/");
    }

    #[test]
    fn prefixes_equal_their_definition_by_substring_search() {
        let parent = |key: &str| match key.split_once("@sha256:") {
            Some((repo, _)) => format!("{}/", repo.split_once(':').map_or(repo, |(r, _)| r)),
            None => key.rfind('/').map_or(String::new(), |i| key[..=i].to_string()),
        };
        let top = |key: &str| {
            let path = key.split_once("@sha256:").map_or(key, |(repo, _)| repo);
            path.find('/').map_or("", |i| &key[..=i]).to_string()
        };
        let parts = ["a", "/", "@", "@sha256:", "@sha25", ":", "b1", "é"];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5_000 {
            let mut key = String::new();
            for _ in 0..(state % 9) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                key.push_str(parts[(state % parts.len() as u64) as usize]);
            }
            state = state.wrapping_add(1);
            assert_eq!(parent_prefix(&key), parent(&key), "{key}");
            assert_eq!(top_prefix(&key), top(&key), "{key}");
        }
    }

    #[test]
    fn detects_a_bulk_scan() {
        let at = 200 * DAY;
        let mut acc = PrefixAccumulator::new(at);
        for i in 0..10 {
            let mut s = HistoryStats::new(at);
            if i < 6 {
                s.observe(at - 20 * DAY - 5);
            }
            if i == 0 {
                s.observe(at - 3);
            }
            acc.add(&s);
        }
        let a = acc.finish();
        assert_eq!(a.objects, 10);
        assert_eq!(a.objects_read_30d, 6);
        assert_eq!(a.bulk_scan_days_128d, 1);
        assert_eq!(a.last_bulk_scan, Some(at - 21 * DAY));
        assert_eq!(a.last_read, Some(at - 3));
        assert_eq!(a.reads_7d, 1);
    }
}
