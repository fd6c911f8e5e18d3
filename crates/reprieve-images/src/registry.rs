//! Container-image identity: an image is a manifest digest within a repository; tags are mutable pointers to
//! digests, with a history; a pull counts for the digest it was served (by tag: the digest the tag pointed to at
//! that time); an image index keeps its child manifests alive.
//!
//! [`Registry`] folds registry events and ECR listings into that model (pulls straight into per-digest
//! [`HistoryStats`], never stored), resolves Kubernetes [`ImageUse`]s to the digests they keep, and produces one
//! [`ObjectRecord`] per existing digest (key `repository@digest`) with its [`ImageFacts`], ready for the shared
//! engine, policy and reports.
//!
//! What keeps a digest (each is a live reference, the policy's hard rule):
//! - a workload naming it by digest, or a Pod running it (`status.containerStatuses[].imageID`);
//! - a workload naming a tag that points at it at the scoring time (from the events' tag history or the ECR
//!   listing's current tags: every source counts), or pointed at it within the rollback grace before (pods
//!   started then may still run it and be rescheduled);
//! - an existing image index that lists it as a child (deleting the child would break the index), or, in an ECR
//!   listing that does not list children, an untagged manifest pushed with an index (the minutes before it).
//!
//! Repository names are matched without the registry host (an ECR listing and the events name repositories
//! without it): a reference to another registry's repository of the same path holds the image too. That errs on
//! the side of keeping, never of deleting.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use reprieve_core::time::DAY;
use reprieve_core::{AccessSummary, HistoryStats, ImageFacts, ObjectRecord, ScheduleFacts, UnixSeconds};
use serde::{Deserialize, Serialize};

use crate::cron::Schedule;
use crate::ecr::EcrImage;
use crate::events::{Action, RegistryEvent, is_index_media_type};
use crate::kube::{ImageUse, KubeObject};

/// How long before the scoring time a tag's previous digest is still held for a workload naming the tag.
pub const DEFAULT_TAG_GRACE_SECS: i64 = 7 * DAY;

/// In an ECR listing (no child lists), untagged manifests pushed this long before an index (or a minute after)
/// are taken as its children.
pub const INDEX_CHILD_WINDOW_SECS: i64 = 10 * 60;

/// A fast non-cryptographic hasher (the multiply-rotate of rustc's `FxHasher`) for the maps every event goes
/// through: SipHash over a 71-byte digest per event was a tenth of a 10M-event run. The keys are the registry's own
/// repository names and digests (digests are already uniformly random), read from the operator's files.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // Murmur3's finaliser: the table indexes by the low bits, which the multiply alone leaves depending on the
        // low bits of the input only (structured digests would collide).
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A digest as a map key: a sha256 digest (nearly all of them) as its 32 bytes, inline in the table, so that the
/// lookup every pull makes compares 32 bytes in place instead of following a pointer to 71 bytes of text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DigestKey {
    Sha256([u8; 32]),
    Other(Box<str>),
}

impl DigestKey {
    /// `digest` is normalised (lowercase hex).
    fn of(digest: &str) -> Self {
        let hex = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        if let Some(text) = digest.strip_prefix("sha256:")
            && text.len() == 64
        {
            let mut bytes = [0u8; 32];
            let mut ok = true;
            for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
                match (hex(pair[0]), hex(pair[1])) {
                    (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
                    _ => ok = false,
                }
            }
            if ok {
                return DigestKey::Sha256(bytes);
            }
        }
        DigestKey::Other(digest.into())
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Why a digest is held: one live reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveRef {
    /// The Kubernetes object; for an index's child, kind `ImageIndex` and the index's key as name.
    pub object: KubeObject,
    pub container: String,
    /// The reference as written (or the index key).
    pub image: String,
    /// How it resolved: `digest`, `tag 1.2`, `tag latest until 2025-01-02T00:00:00Z (rollback grace)`,
    /// `running (pod status)`, `child of index`, `possible child of index (pushed with it)`.
    pub how: String,
}

/// A reference that names no image of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedRef {
    pub object: KubeObject,
    pub container: String,
    pub image: String,
    /// `repository not in the inventory`, `tag not found`, `digest not in the inventory`.
    pub why: String,
}

/// A CronJob and when it next runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronRun {
    pub object: KubeObject,
    pub schedule: String,
    pub time_zone: Option<String>,
    pub suspended: bool,
    /// First run at or after the scoring time (UTC; a time zone is not applied).
    pub next_run: Option<UnixSeconds>,
    pub period_secs: Option<i64>,
    /// Why the schedule could not be read.
    pub error: Option<String>,
    /// The image keys it needs.
    pub images: Vec<String>,
}

/// Counts of what the events did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventCounts {
    pub pushes: u64,
    pub pulls_by_tag: u64,
    pub pulls_by_digest: u64,
    /// Pulls by tag alone whose tag pointed at no known digest at the time: not attributed.
    pub pulls_unresolved: u64,
    pub deletes: u64,
    /// Events at or after the scoring time: ignored.
    pub at_or_after: u64,
}

#[derive(Debug, Clone, Copy)]
struct TagMove {
    at: UnixSeconds,
    /// `None`: the tag was deleted.
    image: Option<u32>,
}

#[derive(Debug, Default)]
struct Repo {
    name: Box<str>,
    digests: FastMap<DigestKey, u32>,
    tags: FastMap<Box<str>, Vec<TagMove>>,
}

#[derive(Debug)]
struct Image {
    repo: u32,
    digest: Box<str>,
    media_type: Option<Box<str>>,
    size: Option<u64>,
    pushed: Option<UnixSeconds>,
    deleted: Option<UnixSeconds>,
    ecr_tags: Vec<Box<str>>,
    ecr_last_pull: Option<UnixSeconds>,
    children: Vec<u32>,
    stats: HistoryStats,
    pulls_by_tag: u64,
    pulls_by_digest: u64,
}

/// One image ready to score, with what the report says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageObject {
    pub record: ObjectRecord,
    pub stats: HistoryStats,
    pub facts: ImageFacts,
    /// Why it is held (empty: nothing references it).
    pub live: Vec<LiveRef>,
    /// Keys of its children when it is an index.
    pub children: Vec<String>,
}

/// Everything built at the scoring time.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Existing images, sorted by key.
    pub images: Vec<ImageObject>,
    pub unresolved: Vec<UnresolvedRef>,
    pub cron_runs: Vec<CronRun>,
    pub counts: EventCounts,
    /// Images deleted before the scoring time (not scored).
    pub deleted_images: u64,
    /// Images first pushed at or after the scoring time (not scored).
    pub future_images: u64,
    /// Start of complete history given to every image.
    pub history_complete_since: Option<UnixSeconds>,
}

/// The registry as the events and listings describe it, seen at one scoring time.
#[derive(Debug)]
pub struct Registry {
    at: UnixSeconds,
    tenant: String,
    repos: Vec<Repo>,
    repo_ids: FastMap<Box<str>, u32>,
    images: Vec<Image>,
    /// Pulls by tag alone, resolved once every tag move is known: (repo, tag, time).
    deferred: Vec<(u32, Box<str>, UnixSeconds)>,
    counts: EventCounts,
    earliest_event: Option<UnixSeconds>,
    uses: Vec<ImageUse>,
}

impl Registry {
    /// An empty registry seen at `at`; every record gets `tenant`.
    pub fn new(at: UnixSeconds, tenant: impl Into<String>) -> Self {
        Self {
            at,
            tenant: tenant.into(),
            repos: Vec::new(),
            repo_ids: FastMap::default(),
            images: Vec::new(),
            deferred: Vec::new(),
            counts: EventCounts::default(),
            earliest_event: None,
            uses: Vec::new(),
        }
    }

    fn repo(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.repo_ids.get(name) {
            return id;
        }
        let id = self.repos.len() as u32;
        self.repos.push(Repo {
            name: name.into(),
            ..Repo::default()
        });
        self.repo_ids.insert(name.into(), id);
        id
    }

    fn image(&mut self, repo: u32, digest: &str) -> u32 {
        let key = DigestKey::of(digest);
        if let Some(&id) = self.repos[repo as usize].digests.get(&key) {
            return id;
        }
        let id = self.images.len() as u32;
        self.images.push(Image {
            repo,
            digest: digest.into(),
            media_type: None,
            size: None,
            pushed: None,
            deleted: None,
            ecr_tags: Vec::new(),
            ecr_last_pull: None,
            children: Vec::new(),
            stats: HistoryStats::new(self.at),
            pulls_by_tag: 0,
            pulls_by_digest: 0,
        });
        self.repos[repo as usize].digests.insert(key, id);
        id
    }

    /// Folds one registry event in.
    pub fn observe(&mut self, e: &RegistryEvent<'_>) {
        if e.ts >= self.at {
            self.counts.at_or_after += 1;
            return;
        }
        self.earliest_event = Some(self.earliest_event.map_or(e.ts, |t| t.min(e.ts)));
        let repo = self.repo(&e.repository);
        match e.action {
            Action::Push => {
                self.counts.pushes += 1;
                let Some(digest) = &e.digest else { return };
                let id = self.image(repo, digest);
                let image = &mut self.images[id as usize];
                image.pushed = Some(image.pushed.map_or(e.ts, |p| p.min(e.ts)));
                if image.deleted.is_some_and(|d| d <= e.ts) {
                    // Pushed again after a delete: it exists again.
                    image.deleted = None;
                }
                if let Some(m) = &e.media_type {
                    image.media_type = Some(m.as_ref().into());
                }
                let children: Vec<u32> = e.references.iter().map(|(d, _)| self.image(repo, d)).collect();
                let image = &mut self.images[id as usize];
                for c in children {
                    if !image.children.contains(&c) {
                        image.children.push(c);
                    }
                }
                if let Some(tag) = &e.tag {
                    self.move_tag(repo, tag, e.ts, Some(id));
                }
            }
            Action::Pull => match (&e.digest, &e.tag) {
                (Some(digest), tag) => {
                    let id = self.image(repo, digest);
                    let image = &mut self.images[id as usize];
                    image.stats.observe(e.ts);
                    if tag.is_some() {
                        image.pulls_by_tag += 1;
                        self.counts.pulls_by_tag += 1;
                    } else {
                        image.pulls_by_digest += 1;
                        self.counts.pulls_by_digest += 1;
                    }
                }
                (None, Some(tag)) => self.deferred.push((repo, tag.as_ref().into(), e.ts)),
                (None, None) => {}
            },
            Action::Delete => {
                self.counts.deletes += 1;
                match (&e.digest, &e.tag) {
                    (_, Some(tag)) => self.move_tag(repo, tag, e.ts, None),
                    (Some(digest), None) => {
                        let id = self.image(repo, digest);
                        let image = &mut self.images[id as usize];
                        image.deleted = Some(image.deleted.map_or(e.ts, |d| d.max(e.ts)));
                    }
                    (None, None) => {}
                }
            }
        }
    }

    fn move_tag(&mut self, repo: u32, tag: &str, at: UnixSeconds, image: Option<u32>) {
        let tags = &mut self.repos[repo as usize].tags;
        let moves = match tags.get_mut(tag) {
            Some(m) => m,
            None => tags.entry(tag.into()).or_default(),
        };
        moves.push(TagMove { at, image });
    }

    /// Adds one image of an ECR listing (the registry's own current state: its tags are current).
    pub fn add_ecr(&mut self, e: &EcrImage<'_>) {
        let repo = self.repo(&e.repository);
        let id = self.image(repo, &e.digest);
        let image = &mut self.images[id as usize];
        if let Some(p) = e.pushed_at {
            image.pushed = Some(image.pushed.map_or(p, |q| q.min(p)));
        }
        if e.pushed_at.is_some_and(|p| p >= self.at) {
            // Not there yet at the scoring time: neither are its tags.
            return;
        }
        image.size = e.size.or(image.size);
        if let Some(m) = &e.media_type {
            image.media_type = Some(m.as_ref().into());
        }
        for t in &e.tags {
            if !image.ecr_tags.iter().any(|x| **x == **t) {
                image.ecr_tags.push(t.as_ref().into());
            }
        }
        image.ecr_last_pull = match (image.ecr_last_pull, e.last_pull.filter(|&l| l < self.at)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Adds one Kubernetes image use (resolved when the records are built).
    pub fn add_use(&mut self, u: ImageUse) {
        self.uses.push(u);
    }

    /// The image a tag pointed at, at time `t` (moves at or before `t`).
    fn tag_at(&self, repo: u32, tag: &str, t: UnixSeconds) -> Option<u32> {
        let moves = self.repos[repo as usize].tags.get(tag)?;
        let i = moves.partition_point(|m| m.at <= t);
        let image = moves.get(i.checked_sub(1)?)?.image?;
        let deleted = self.images[image as usize].deleted.is_some_and(|d| d <= t);
        (!deleted).then_some(image)
    }

    fn exists(&self, id: u32) -> bool {
        let i = &self.images[id as usize];
        i.deleted.is_none_or(|d| d >= self.at) && i.pushed.is_none_or(|p| p < self.at)
    }

    /// Resolves everything at the scoring time. `history_since`: the start of complete pull history (`None`: the
    /// earliest event read, and unknown when only listings were read). `tag_grace_secs`: see
    /// [`DEFAULT_TAG_GRACE_SECS`].
    pub fn build(mut self, history_since: Option<UnixSeconds>, tag_grace_secs: i64) -> Built {
        let at = self.at;
        for repo in &mut self.repos {
            for moves in repo.tags.values_mut() {
                moves.sort_by_key(|m| m.at);
            }
        }
        // Pulls by tag alone: the digest the tag pointed to then.
        for (repo, tag, t) in std::mem::take(&mut self.deferred) {
            match self.tag_at(repo, &tag, t) {
                Some(id) => {
                    let image = &mut self.images[id as usize];
                    image.stats.observe(t);
                    image.pulls_by_tag += 1;
                    self.counts.pulls_by_tag += 1;
                }
                None => self.counts.pulls_unresolved += 1,
            }
        }

        // Current tags per image, and when each was set there.
        let mut tags: Vec<BTreeMap<Box<str>, Option<UnixSeconds>>> = vec![BTreeMap::new(); self.images.len()];
        for repo in &self.repos {
            for (tag, moves) in &repo.tags {
                if let Some(last) = moves.last()
                    && let Some(id) = last.image
                    && self.exists(id)
                {
                    tags[id as usize].insert(tag.clone(), Some(last.at));
                }
            }
        }
        for (id, image) in self.images.iter().enumerate() {
            for t in &image.ecr_tags {
                tags[id].entry(t.clone()).or_insert(image.pushed);
            }
        }
        let uses = std::mem::take(&mut self.uses);
        // ECR tags by (repo, tag) for resolving references.
        let mut ecr_tag_holders: FastMap<(u32, &str), Vec<u32>> = FastMap::default();
        for (id, image) in self.images.iter().enumerate() {
            for t in &image.ecr_tags {
                ecr_tag_holders.entry((image.repo, t)).or_default().push(id as u32);
            }
        }

        let mut live: Vec<Vec<LiveRef>> = vec![Vec::new(); self.images.len()];
        let mut unresolved = Vec::new();
        let mut cron_runs: BTreeMap<KubeObject, CronRun> = BTreeMap::new();
        let mut schedule: Vec<Option<ScheduleFacts>> = vec![None; self.images.len()];
        for u in &uses {
            let mut held: Vec<(u32, String)> = Vec::new();
            let repos: Vec<u32> = u
                .reference
                .repository_candidates()
                .iter()
                .filter_map(|name| self.repo_ids.get(*name).copied())
                .collect();
            let mut why = if repos.is_empty() {
                "repository not in the inventory"
            } else {
                ""
            };
            for &repo in &repos {
                if let Some(digest) = &u.reference.digest {
                    match self.repos[repo as usize].digests.get(&DigestKey::of(digest)) {
                        Some(&id) if self.exists(id) => {
                            let how = if u.container.starts_with("status:") {
                                "running (pod status)"
                            } else {
                                "digest"
                            };
                            held.push((id, how.to_owned()));
                        }
                        _ => why = "digest not in the inventory",
                    }
                }
                // A reference with both a tag and a digest runs the digest; the tag is held too, conservatively.
                if let Some(tag) = &u.reference.tag {
                    let before = held.len();
                    if let Some(id) = self.tag_at(repo, tag, at - 1).filter(|&id| self.exists(id)) {
                        held.push((id, format!("tag {tag}")));
                    }
                    for &id in ecr_tag_holders.get(&(repo, tag.as_str())).into_iter().flatten() {
                        if self.exists(id) {
                            held.push((id, format!("tag {tag}")));
                        }
                    }
                    // Digests the tag left within the grace: pods started before still run them.
                    if let Some(moves) = self.repos[repo as usize].tags.get(tag.as_str()) {
                        for w in moves.windows(2) {
                            if w[1].at > at - tag_grace_secs
                                && w[1].at < at
                                && let Some(id) = w[0].image
                                && self.exists(id)
                            {
                                let until = reprieve_core::time::format_rfc3339(w[1].at);
                                held.push((id, format!("tag {tag} until {until} (rollback grace)")));
                            }
                        }
                    }
                    if held.len() == before && u.reference.digest.is_none() {
                        why = "tag not found";
                    }
                }
            }
            held.sort();
            held.dedup();
            if held.is_empty() {
                unresolved.push(UnresolvedRef {
                    object: u.object.clone(),
                    container: u.container.clone(),
                    image: u.image.clone(),
                    why: why.to_owned(),
                });
            }
            let cron = u.cron.as_ref().map(|c| {
                cron_runs.entry(u.object.clone()).or_insert_with(|| {
                    let (parsed, zone) = match Schedule::parse(&c.schedule) {
                        Ok((s, zone)) => (Ok(s), zone),
                        Err(e) => (Err(e), None),
                    };
                    let next = parsed.as_ref().ok().and_then(|s| s.next_and_period(at));
                    CronRun {
                        object: u.object.clone(),
                        schedule: c.schedule.clone(),
                        time_zone: c.time_zone.clone().or(zone),
                        suspended: c.suspended,
                        next_run: next.map(|n| n.0),
                        period_secs: next.map(|n| n.1),
                        error: parsed.err(),
                        images: Vec::new(),
                    }
                })
            });
            let run = cron.and_then(|c| {
                let run = (!c.suspended).then_some(()).and(c.next_run.zip(c.period_secs));
                for (id, _) in &held {
                    let key = self.key(*id);
                    if !c.images.contains(&key) {
                        c.images.push(key);
                    }
                }
                run
            });
            for (id, how) in held {
                if let Some((next_run, period_secs)) = run {
                    let s = &mut schedule[id as usize];
                    if s.is_none_or(|s| next_run < s.next_run) {
                        *s = Some(ScheduleFacts { next_run, period_secs });
                    }
                }
                live[id as usize].push(LiveRef {
                    object: u.object.clone(),
                    container: u.container.clone(),
                    image: u.image.clone(),
                    how,
                });
            }
        }

        // Children of existing indexes: listed ones, else (ECR) untagged manifests pushed with the index.
        let mut by_repo: FastMap<u32, Vec<u32>> = FastMap::default();
        for (id, image) in self.images.iter().enumerate() {
            by_repo.entry(image.repo).or_default().push(id as u32);
        }
        for id in 0..self.images.len() as u32 {
            let image = &self.images[id as usize];
            // Listed children make an index whatever a (possibly inconsistent) media type said.
            let is_index = !image.children.is_empty() || image.media_type.as_deref().is_some_and(is_index_media_type);
            if !self.exists(id) || !is_index {
                continue;
            }
            let mut children: Vec<(u32, &str)> = image.children.iter().map(|&c| (c, "child of index")).collect();
            if children.is_empty()
                && let Some(pushed) = image.pushed
            {
                for &c in by_repo.get(&image.repo).into_iter().flatten() {
                    let child = &self.images[c as usize];
                    let untagged = tags[c as usize].is_empty();
                    let plain = !child.media_type.as_deref().is_some_and(is_index_media_type);
                    let near = child
                        .pushed
                        .is_some_and(|p| p >= pushed - INDEX_CHILD_WINDOW_SECS && p <= pushed + 60);
                    if c != id && untagged && plain && near {
                        children.push((c, "possible child of index (pushed with it)"));
                    }
                }
            }
            let key = self.key(id);
            for (c, how) in children {
                if c != id && self.exists(c) {
                    live[c as usize].push(LiveRef {
                        object: KubeObject {
                            kind: "ImageIndex".to_owned(),
                            namespace: String::new(),
                            name: key.clone(),
                        },
                        container: String::new(),
                        image: key.clone(),
                        how: how.to_owned(),
                    });
                }
            }
        }

        let history_complete_since = history_since.or(self.earliest_event).map(|s| s.min(at));
        let mut deleted_images = 0;
        let mut future_images = 0;
        // Sorted by key before the (large) records are built: sorting them would move each one many times.
        let mut order: Vec<(String, usize)> = Vec::with_capacity(self.images.len());
        for (id, image) in self.images.iter().enumerate() {
            if image.deleted.is_some_and(|d| d < at) {
                deleted_images += 1;
            } else if image.pushed.is_some_and(|p| p >= at) {
                future_images += 1;
            } else {
                order.push((self.key(id as u32), id));
            }
        }
        order.sort_unstable();
        let mut images = Vec::with_capacity(order.len());
        for (key, id) in order {
            let image = &self.images[id];
            let mut stats = image.stats;
            // ECR's last recorded pull, unless the events saw a pull within the day before it (ECR refreshes
            // the time about daily: that is the same pull).
            if let Some(last) = image.ecr_last_pull
                && stats.last.is_none_or(|l| l + DAY < last)
            {
                stats.observe_summary(1, None, Some(last));
            }
            let tag_map = &tags[id];
            let newest_tag_at = tag_map.values().flatten().copied().max();
            let facts = ImageFacts {
                tags: tag_map.keys().map(|t| t.to_string()).collect(),
                newest_tag_at,
                pulls_by_tag: image.pulls_by_tag,
                pulls_by_digest: image.pulls_by_digest,
                is_index: !image.children.is_empty() || image.media_type.as_deref().is_some_and(is_index_media_type),
                schedule: schedule[id],
            };
            let mut refs = std::mem::take(&mut live[id]);
            refs.sort();
            refs.dedup();
            let mut record = ObjectRecord::with_key(key);
            record.tenant = self.tenant.clone();
            record.size = image.size;
            record.created = image.pushed;
            record.modified = newest_tag_at.filter(|&t| t < at).or(image.pushed);
            record.content_type = image.media_type.as_deref().map(str::to_owned);
            record.live_references = u32::try_from(refs.len()).unwrap_or(u32::MAX);
            record.history.complete_since = history_complete_since;
            record.history.summary = (stats.count > 0).then_some(AccessSummary {
                count: stats.count,
                first: stats.first,
                last: stats.last,
            });
            images.push(ImageObject {
                record,
                stats,
                facts,
                live: refs,
                children: image.children.iter().map(|&c| self.key(c)).collect(),
            });
        }
        Built {
            images,
            unresolved,
            cron_runs: cron_runs.into_values().collect(),
            counts: self.counts,
            deleted_images,
            future_images,
            history_complete_since,
        }
    }

    /// `repository@digest`.
    fn key(&self, id: u32) -> String {
        let image = &self.images[id as usize];
        format!("{}@{}", self.repos[image.repo as usize].name, image.digest)
    }
}
