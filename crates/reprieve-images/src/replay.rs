//! Registry notification events as a trace to replay at rolling cuts (`reprieve evaluate` and `reprieve train`
//! with `--registry-events`): the objects are the images (key `repository@digest`), a pull is a read of the image
//! it served (by tag: the digest the tag pointed to at that time), a push is its creation.
//!
//! No look-ahead, by construction: the rows of a cut at `T` come from a [`Registry`] seen at `T` that is fed only
//! the events before `T` (so tags, tag history, pulls by tag, deletes and index children are all as of `T`), the
//! very code `reprieve score` uses, so a model trained on these cuts sees the features the scorer computes. Only
//! the label ("pulled again in `[T, T + H)`") looks at later events.
//!
//! ```no_run
//! use reprieve_images::replay::ImageTrace;
//! let (trace, reports) = ImageTrace::load(&["events.jsonl".into()], "", false)?;
//! let cut = trace.build_cut(1_751_328_000, 14 * 86_400);
//! # Ok::<(), reprieve_batch::ReadError>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use reprieve_batch::ReadError;
use reprieve_batch::formats::ReadReport;
use reprieve_core::UnixSeconds;
use reprieve_core::features::extract_image_with_stats;
use reprieve_model::dataset::{Cut, CutRow};

use crate::ecr::read_ecr_images;
use crate::events::{Action, RegistryEvent, read_registry_events};
use crate::registry::{Built, DEFAULT_TAG_GRACE_SECS, Registry};

/// No string (a missing digest, tag or media type).
const NONE: u32 = u32::MAX;

/// One manifest event with its strings interned.
#[derive(Debug, Clone, Copy)]
struct Stored {
    ts: UnixSeconds,
    action: Action,
    repo: u32,
    digest: u32,
    tag: u32,
    media_type: u32,
    /// Range of the index's children in `ImageTrace::references`.
    refs: (u32, u32),
}

/// A tag set to an image (`None`: deleted) at a time.
type TagMove = (UnixSeconds, Option<u32>);

/// Registry events in memory, ready to be seen at any cut.
#[derive(Debug, Clone)]
pub struct ImageTrace {
    strings: Vec<Box<str>>,
    /// Manifest events, sorted by time (ties in reading order).
    events: Vec<Stored>,
    /// Child manifests of index pushes: (digest, media type) string ids.
    references: Vec<(u32, u32)>,
    /// Every image any event names, by key `repository@digest`: its id is the index.
    keys: Vec<String>,
    ids: HashMap<String, u32>,
    /// Pulls resolved to images (time, image id), sorted by time: the labels.
    pulls: Vec<(UnixSeconds, u32)>,
    /// Image sizes from ECR listings, by image id (events carry none).
    sizes: Vec<Option<u64>>,
    /// Pulls by a tag that pointed at no known digest then (not attributed).
    pub unresolved_pulls: u64,
    /// Tenant of every record.
    pub tenant: String,
    /// The first event: pull history is complete from here on.
    pub log_start: UnixSeconds,
    /// One second after the last event.
    pub log_end: UnixSeconds,
}

/// Interns strings of the events as they are read.
#[derive(Default)]
struct Interner {
    strings: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn opt(&mut self, s: Option<&Cow<'_, str>>) -> u32 {
        s.map_or(NONE, |s| self.id(s))
    }
}

impl ImageTrace {
    /// Reads registry notification event files (see [`crate::events`]) into a trace; every record gets `tenant`.
    /// Malformed events are counted in the reports (fatal with `strict`).
    pub fn load(paths: &[PathBuf], tenant: &str, strict: bool) -> Result<(Self, Vec<ReadReport>), ReadError> {
        let mut interner = Interner::default();
        let mut events = Vec::new();
        let mut references = Vec::new();
        let mut reports = Vec::with_capacity(paths.len());
        for path in paths {
            reports.push(read_registry_events(path, strict, |e| {
                let start = references.len() as u32;
                for (d, m) in &e.references {
                    references.push((interner.id(d), interner.opt(m.as_ref())));
                }
                events.push(Stored {
                    ts: e.ts,
                    action: e.action,
                    repo: interner.id(&e.repository),
                    digest: interner.opt(e.digest.as_ref()),
                    tag: interner.opt(e.tag.as_ref()),
                    media_type: interner.opt(e.media_type.as_ref()),
                    refs: (start, references.len() as u32),
                });
            })?);
        }
        Ok((Self::from_events(interner.strings, events, references, tenant), reports))
    }

    fn from_events(strings: Vec<Box<str>>, mut events: Vec<Stored>, references: Vec<(u32, u32)>, tenant: &str) -> Self {
        events.sort_by_key(|e| e.ts);
        let mut trace = Self {
            strings,
            log_start: events.first().map_or(0, |e| e.ts),
            log_end: events.last().map_or(0, |e| e.ts + 1),
            events,
            references,
            keys: Vec::new(),
            ids: HashMap::new(),
            pulls: Vec::new(),
            sizes: Vec::new(),
            unresolved_pulls: 0,
            tenant: tenant.to_owned(),
        };
        trace.resolve_pulls();
        trace
    }

    fn key_id(&mut self, repo: u32, digest: u32) -> u32 {
        let key = format!("{}@{}", self.strings[repo as usize], self.strings[digest as usize]);
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key, id);
        id
    }

    /// Every pull to the image it served: by digest directly, by tag alone through the tag's moves up to the pull
    /// (a pull at the second of a move gets the new digest, as [`Registry`] resolves it).
    fn resolve_pulls(&mut self) {
        let mut moves: HashMap<(u32, u32), Vec<TagMove>> = HashMap::new();
        let events = std::mem::take(&mut self.events);
        for e in &events {
            let id = (e.digest != NONE).then(|| self.key_id(e.repo, e.digest));
            if id.is_some() {
                for r in e.refs.0..e.refs.1 {
                    let child = self.references[r as usize].0;
                    self.key_id(e.repo, child);
                }
            }
            match (e.action, id) {
                (Action::Pull, Some(id)) => self.pulls.push((e.ts, id)),
                (Action::Push, Some(id)) if e.tag != NONE => {
                    moves.entry((e.repo, e.tag)).or_default().push((e.ts, Some(id)));
                }
                (Action::Delete, _) if e.tag != NONE => moves.entry((e.repo, e.tag)).or_default().push((e.ts, None)),
                _ => {}
            }
        }
        for e in &events {
            if e.action != Action::Pull || e.digest != NONE || e.tag == NONE {
                continue;
            }
            let target = moves.get(&(e.repo, e.tag)).and_then(|m| {
                let n = m.partition_point(|(at, _)| *at <= e.ts);
                m.get(n.checked_sub(1)?)?.1
            });
            match target {
                Some(id) => self.pulls.push((e.ts, id)),
                None => self.unresolved_pulls += 1,
            }
        }
        self.events = events;
        self.pulls.sort_unstable();
    }

    fn text(&self, id: u32) -> Option<Cow<'_, str>> {
        (id != NONE).then(|| Cow::Borrowed(&*self.strings[id as usize]))
    }

    /// Takes the sizes of the images the events name from `aws ecr describe-images` files, and nothing else:
    /// a digest's size never changes, while the listing's tags and last pulls are of the day it was taken, not of
    /// the cuts. Returns how each file read and how many images got a size.
    pub fn add_sizes(&mut self, paths: &[PathBuf], strict: bool) -> Result<(Vec<ReadReport>, u64), ReadError> {
        let mut sizes = std::mem::take(&mut self.sizes);
        sizes.resize(self.keys.len(), None);
        let mut reports = Vec::with_capacity(paths.len());
        let mut key = String::new();
        for path in paths {
            reports.push(read_ecr_images(path, strict, |image| {
                key.clear();
                key.push_str(&image.repository);
                key.push('@');
                key.push_str(&image.digest);
                if let (Some(&id), Some(size)) = (self.ids.get(key.as_str()), image.size) {
                    sizes[id as usize] = Some(size);
                }
            })?);
        }
        let known = sizes.iter().filter(|s| s.is_some()).count() as u64;
        self.sizes = sizes;
        Ok((reports, known))
    }

    /// Images any event names (pushed, pulled, deleted or listed by an index).
    pub fn images(&self) -> usize {
        self.keys.len()
    }

    /// Pulls attributed to an image.
    pub fn pulls(&self) -> usize {
        self.pulls.len()
    }

    /// Manifest events read.
    pub fn events(&self) -> usize {
        self.events.len()
    }

    /// The image id of a key `repository@digest`.
    pub fn id(&self, key: &str) -> Option<u32> {
        self.ids.get(key).copied()
    }

    /// The key of an image id.
    pub fn key_of(&self, id: u32) -> Option<&str> {
        self.keys.get(id as usize).map(String::as_str)
    }

    /// The registry as the events before `at` describe it (and nothing later): the images that exist at `at`,
    /// with their records, pull statistics and [`ImageFacts`](reprieve_core::ImageFacts), exactly as
    /// `reprieve score --registry-events` builds them with pull history complete from the trace's start.
    pub fn at(&self, at: UnixSeconds) -> Built {
        let mut registry = Registry::new(at, self.tenant.clone());
        let end = self.events.partition_point(|e| e.ts < at);
        for e in &self.events[..end] {
            let references = (e.refs.0..e.refs.1)
                .filter_map(|r| {
                    let (d, m) = self.references[r as usize];
                    Some((self.text(d)?, self.text(m)))
                })
                .collect();
            let Some(repository) = self.text(e.repo) else { continue };
            registry.observe(&RegistryEvent {
                action: e.action,
                ts: e.ts,
                repository,
                digest: self.text(e.digest),
                tag: self.text(e.tag),
                media_type: self.text(e.media_type),
                references,
            });
        }
        registry.build(Some(self.log_start), DEFAULT_TAG_GRACE_SECS)
    }

    /// The labelled rows of the cut at `at`: one per image existing at `at`, its features as the scorer computes
    /// them from the events before `at`, labelled "pulled in `[at, at + horizon_secs)`". A row's `object` is the
    /// image id ([`ImageTrace::key_of`]).
    pub fn build_cut(&self, at: UnixSeconds, horizon_secs: i64) -> Cut {
        let mut reused = vec![false; self.keys.len()];
        let from = self.pulls.partition_point(|p| p.0 < at);
        let to = self.pulls.partition_point(|p| p.0 < at.saturating_add(horizon_secs));
        for &(_, id) in &self.pulls[from..to] {
            reused[id as usize] = true;
        }
        let rows = self
            .at(at)
            .images
            .into_iter()
            .filter_map(|mut image| {
                // Every image the registry builds was named by an event, so it has an id.
                let object = self.id(&image.record.key)?;
                if image.record.size.is_none() {
                    image.record.size = self.sizes.get(object as usize).copied().flatten();
                }
                let features = extract_image_with_stats(&image.record, &image.stats, Some(&image.facts));
                // Idle since the last pull; never pulled: since it was pushed, or since the log started.
                let seen_from = image.record.created.map_or(self.log_start, |c| c.max(self.log_start));
                let since = image.stats.last.unwrap_or(seen_from).min(at);
                Some(CutRow {
                    object,
                    recent: features.recently_read(),
                    features,
                    idle_secs: at - since,
                    age_secs: reprieve_model::dataset::policy_age_secs(&image.record, &image.stats),
                    size: image.record.size.unwrap_or(0),
                    reused: reused[object as usize],
                })
            })
            .collect();
        Cut { at, horizon_secs, rows }
    }
}
