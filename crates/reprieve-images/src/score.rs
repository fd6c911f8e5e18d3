//! `reprieve score` for container images: the readers into a [`Registry`], its records through the shared batch
//! scorer (same engine, policy, scores file and report), plus the report's image sections: every image held back
//! by a live reference with the objects that reference it and the next CronJob run that needs it, the tags that
//! would go with each digest that may go, the CronJobs, and the references that name no image of the inventory.
//!
//! As a last line of defence the run refuses (and writes nothing under the final names) if a live-referenced
//! image ever got ARCHIVE or DELETE_CANDIDATE; the policy makes that impossible, and this keeps it so.

use std::fmt::Write as _;
use std::path::PathBuf;

use reprieve_batch::formats::ReadReport;
use reprieve_batch::score::{
    Prepared, PreparedObject, ScoreSummary, UnknownReads, VerdictSink, score_prepared, write_reports,
};
use reprieve_batch::{PriceTable, ScoreJob};
use reprieve_core::time::{format_duration, format_rfc3339};
use reprieve_core::{ReasonCode, UnixSeconds, VerdictClass};
use reprieve_model::{Engine, Scored};
use serde::{Deserialize, Serialize};

use crate::ImageError;
use crate::ecr::read_ecr_images;
use crate::events::read_registry_events;
use crate::kube::read_kubernetes;
use crate::registry::{Built, CronRun, DEFAULT_TAG_GRACE_SECS, EventCounts, LiveRef, Registry, UnresolvedRef};

/// How many images the Markdown report lists per table (the JSON report lists up to [`JSON_LIST_CAP`]).
pub const MARKDOWN_LIST_CAP: usize = 200;
/// How many images the JSON report lists per list.
pub const JSON_LIST_CAP: usize = 100_000;

/// One image scoring run.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageJob {
    /// Registry notification event files.
    pub registry_events: Vec<PathBuf>,
    /// `aws ecr describe-images` output files.
    pub ecr_images: Vec<PathBuf>,
    /// Kubernetes object files (YAML/JSON).
    pub kubernetes: Vec<PathBuf>,
    pub at: UnixSeconds,
    /// Scores file (`.parquet` or `.csv`).
    pub out: PathBuf,
    /// Markdown report; the JSON report goes beside it.
    pub report: Option<PathBuf>,
    /// Tenant of every image record (e.g. the registry host or account).
    pub tenant: String,
    /// Start of complete pull history; `None`: the earliest event read (unknown with listings alone).
    pub history_complete_since: Option<UnixSeconds>,
    /// See [`DEFAULT_TAG_GRACE_SECS`].
    pub tag_grace_secs: i64,
    pub strict: bool,
    pub prices: PriceTable,
    pub progress: bool,
}

impl ImageJob {
    pub fn new(at: UnixSeconds, out: impl Into<PathBuf>) -> Self {
        Self {
            registry_events: Vec::new(),
            ecr_images: Vec::new(),
            kubernetes: Vec::new(),
            at,
            out: out.into(),
            report: None,
            tenant: String::new(),
            history_complete_since: None,
            tag_grace_secs: DEFAULT_TAG_GRACE_SECS,
            strict: false,
            prices: PriceTable::default(),
            progress: false,
        }
    }
}

/// An image held back by live references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldImage {
    pub key: String,
    pub tags: Vec<String>,
    pub class: VerdictClass,
    pub reasons: Vec<ReasonCode>,
    pub references: Vec<LiveRef>,
    /// The earliest next run of a CronJob that needs it.
    pub next_scheduled_run: Option<UnixSeconds>,
}

/// An image that may go, with what goes with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LetGoImage {
    pub key: String,
    pub class: VerdictClass,
    pub probability: f64,
    /// Tags that point at the digest: they go with it.
    pub tags: Vec<String>,
    /// Child manifests (when it is an index).
    pub children: Vec<String>,
    pub bytes: Option<u64>,
}

/// The report's container-image section (`images` in the JSON report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagesReport {
    pub images: u64,
    pub indexes: u64,
    pub tagged_images: u64,
    pub tags: u64,
    pub deleted_before_scoring_time: u64,
    pub pushed_at_or_after_scoring_time: u64,
    pub events: EventCounts,
    /// Every image with a live reference (all RETAIN), by key.
    pub held_by_reference: Vec<HeldImage>,
    /// ARCHIVE and DELETE_CANDIDATE images, by key (at most [`JSON_LIST_CAP`]).
    pub let_go: Vec<LetGoImage>,
    pub let_go_total: u64,
    pub cron_jobs: Vec<CronRun>,
    pub unresolved_references: Vec<UnresolvedRef>,
    pub notes: Vec<String>,
}

/// What an image run did: the shared summary and the image section.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    pub summary: ScoreSummary,
    pub images: ImagesReport,
}

/// What the collector needs of each scored image, in scoring order.
#[derive(Debug)]
struct Meta {
    tags: Vec<String>,
    live: Vec<LiveRef>,
    children: Vec<String>,
    next_run: Option<UnixSeconds>,
    bytes: Option<u64>,
}

/// Sees every verdict (in order) before it is written: collects the image sections, forwards to the audit sink,
/// and stops the run if a live-referenced image would go.
struct Collector<'a> {
    metas: Vec<Meta>,
    next: usize,
    inner: Option<&'a mut dyn VerdictSink>,
    held: Vec<HeldImage>,
    let_go: Vec<LetGoImage>,
    let_go_total: u64,
}

impl VerdictSink for Collector<'_> {
    fn record(&mut self, scored: &[Scored]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for s in scored {
            let v = &s.verdict;
            let Some(meta) = self.metas.get(self.next) else {
                return Err("more verdicts than images".into());
            };
            self.next += 1;
            if !meta.live.is_empty() {
                if v.class.lets_go() || v.class != VerdictClass::Retain {
                    return Err(format!(
                        "{} has {} live reference(s) but got {}: refusing to write these verdicts",
                        v.key,
                        meta.live.len(),
                        v.class.as_str()
                    )
                    .into());
                }
                self.held.push(HeldImage {
                    key: v.key.clone(),
                    tags: meta.tags.clone(),
                    class: v.class,
                    reasons: v.reasons.clone(),
                    references: meta.live.clone(),
                    next_scheduled_run: meta.next_run,
                });
            }
            if v.class.lets_go() {
                self.let_go_total += 1;
                if self.let_go.len() < JSON_LIST_CAP {
                    self.let_go.push(LetGoImage {
                        key: v.key.clone(),
                        class: v.class,
                        probability: v.probability,
                        tags: meta.tags.clone(),
                        children: meta.children.clone(),
                        bytes: meta.bytes,
                    });
                }
            }
        }
        match self.inner.as_mut() {
            Some(inner) => inner.record(scored),
            None => Ok(()),
        }
    }
}

/// Reads the job's files into a registry and resolves it at the scoring time.
pub fn prepare_images(job: &ImageJob) -> Result<(Built, Vec<ReadReport>), ImageError> {
    if job.registry_events.is_empty() && job.ecr_images.is_empty() {
        return Err(ImageError::Usage {
            flag: "--registry-events",
            reason: "give registry events or an ECR listing (--ecr-images): Kubernetes objects alone list no images"
                .to_owned(),
        });
    }
    let mut registry = Registry::new(job.at, job.tenant.clone());
    let mut reports = Vec::new();
    for path in &job.ecr_images {
        reports.push(read_ecr_images(path, job.strict, |i| registry.add_ecr(&i))?);
    }
    for path in &job.registry_events {
        reports.push(read_registry_events(path, job.strict, |e| registry.observe(&e))?);
    }
    for path in &job.kubernetes {
        reports.push(read_kubernetes(path, job.strict, |u| registry.add_use(u))?);
    }
    Ok((registry.build(job.history_complete_since, job.tag_grace_secs), reports))
}

/// Scores the images of `job`, writes the scores file and (if asked) the reports with the image sections.
pub fn run_image_score(
    job: &ImageJob,
    engine: &Engine,
    sink: Option<&mut dyn VerdictSink>,
) -> Result<ImageSummary, ImageError> {
    let (built, reports) = prepare_images(job)?;
    let mut notes = Vec::new();
    if built.history_complete_since.is_none() {
        notes.push(
            "Pull history coverage is unknown (an ECR listing records only the last pull): every image is at most \
             REVIEW (INSUFFICIENT_HISTORY) unless --history-since says since when pulls are complete."
                .to_owned(),
        );
    }
    if built.cron_runs.iter().any(|c| c.time_zone.is_some()) {
        notes.push("CronJob next runs are in UTC: a schedule's time zone is recorded but not applied.".to_owned());
    }
    let images = built.images.len() as u64;
    let indexes = built.images.iter().filter(|i| i.facts.is_index).count() as u64;
    let tagged_images = built.images.iter().filter(|i| !i.facts.tags.is_empty()).count() as u64;
    let tags = built.images.iter().map(|i| i.facts.tags.len() as u64).sum();
    let mut metas = Vec::with_capacity(built.images.len());
    let mut objects = Vec::with_capacity(built.images.len());
    for image in built.images {
        metas.push(Meta {
            tags: image.facts.tags.clone(),
            next_run: image.facts.schedule.map(|s| s.next_run),
            live: image.live,
            children: image.children,
            bytes: image.record.size,
        });
        objects.push(PreparedObject {
            record: image.record,
            stats: image.stats,
            image: Some(Box::new(image.facts)),
        });
    }
    let prepared = Prepared {
        at: job.at,
        history_complete_since: built.history_complete_since,
        objects,
        inventory_objects: images,
        duplicate_rows: 0,
        // No inventory file of the generic kind: the listings and events are all in `log_reports`.
        inventory_report: ReadReport::default(),
        log_reports: reports,
        reads_at_or_after: built.counts.at_or_after,
        reads_ambiguous_tenant: 0,
        unknown: UnknownReads::default(),
    };
    let mut batch_job = ScoreJob::new(PathBuf::new(), Vec::new(), job.at, job.out.clone());
    batch_job.prices = job.prices;
    batch_job.progress = job.progress;
    let mut collector = Collector {
        metas,
        next: 0,
        inner: sink,
        held: Vec::new(),
        let_go: Vec::new(),
        let_go_total: 0,
    };
    let result = score_prepared(&batch_job, prepared, engine, Some(&mut collector));
    let mut summary = match result {
        Ok(s) => s,
        Err(reprieve_batch::BatchError::Sink(e)) if e.to_string().contains("live reference") => {
            return Err(ImageError::Safety(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let report = ImagesReport {
        images,
        indexes,
        tagged_images,
        tags,
        deleted_before_scoring_time: built.deleted_images,
        pushed_at_or_after_scoring_time: built.future_images,
        events: built.counts,
        held_by_reference: collector.held,
        let_go: collector.let_go,
        let_go_total: collector.let_go_total,
        cron_jobs: built.cron_runs,
        unresolved_references: built.unresolved,
        notes,
    };
    if let Some(md) = &job.report {
        let json = serde_json::to_value(&report).map_err(|e| reprieve_batch::BatchError::Json {
            path: md.with_extension("json"),
            source: e,
        })?;
        write_reports(
            &mut summary,
            md,
            &render_images_markdown(&report),
            Some(("images", json)),
        )?;
    }
    Ok(ImageSummary {
        summary,
        images: report,
    })
}

fn cell(text: &str) -> String {
    if text.is_empty() {
        return "-".to_owned();
    }
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn when(t: Option<UnixSeconds>) -> String {
    t.map_or_else(|| "-".to_owned(), format_rfc3339)
}

/// The Markdown of the image sections (appended to the shared report).
pub fn render_images_markdown(r: &ImagesReport) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "\n## Container images\n");
    let _ = writeln!(w, "| | |\n|---|---:|");
    let _ = writeln!(w, "| images (digests) scored | {} |", r.images);
    let _ = writeln!(w, "| of which image indexes | {} |", r.indexes);
    let _ = writeln!(w, "| tagged images / tags | {} / {} |", r.tagged_images, r.tags);
    let _ = writeln!(w, "| held back by live references | {} |", r.held_by_reference.len());
    let _ = writeln!(w, "| ARCHIVE + DELETE_CANDIDATE | {} |", r.let_go_total);
    let _ = writeln!(
        w,
        "| deleted before the scoring time (not scored) | {} |",
        r.deleted_before_scoring_time
    );
    let _ = writeln!(
        w,
        "| pushed at or after the scoring time (not scored) | {} |",
        r.pushed_at_or_after_scoring_time
    );
    let e = &r.events;
    let _ = writeln!(w, "| manifest pushes | {} |", e.pushes);
    let _ = writeln!(
        w,
        "| pulls by tag / by digest | {} / {} |",
        e.pulls_by_tag, e.pulls_by_digest
    );
    let _ = writeln!(
        w,
        "| pulls by a tag that pointed at no known digest (not attributed) | {} |",
        e.pulls_unresolved
    );
    let _ = writeln!(w, "| deletes | {} |", e.deletes);
    for note in &r.notes {
        let _ = writeln!(w, "\n> {note}");
    }

    let _ = writeln!(w, "\n### Held back by live references\n");
    let _ = writeln!(
        w,
        "Every image a Kubernetes object names (by tag or digest), a Pod runs, or an existing index lists is RETAIN \
         (`LIVE_REFERENCE`), whatever its score.\n"
    );
    let _ = writeln!(
        w,
        "| image | tags | verdict | referenced by | how | next scheduled run |\n|---|---|---|---|---|---|"
    );
    for h in r.held_by_reference.iter().take(MARKDOWN_LIST_CAP) {
        let by: Vec<String> = h
            .references
            .iter()
            .map(|l| {
                if l.container.is_empty() {
                    l.object.to_string()
                } else {
                    format!("{} ({})", l.object, l.container)
                }
            })
            .collect();
        let how: Vec<&str> = h.references.iter().map(|l| l.how.as_str()).collect();
        let reasons: Vec<&str> = h.reasons.iter().map(|x| x.as_str()).collect();
        let _ = writeln!(
            w,
            "| `{}` | {} | {} ({}) | {} | {} | {} |",
            h.key,
            cell(&h.tags.join(", ")),
            h.class.as_str(),
            reasons.join(", "),
            cell(&by.join("; ")),
            cell(&how.join("; ")),
            when(h.next_scheduled_run)
        );
    }
    if r.held_by_reference.len() > MARKDOWN_LIST_CAP {
        let _ = writeln!(
            w,
            "\n{} more in the JSON report.",
            r.held_by_reference.len() - MARKDOWN_LIST_CAP
        );
    }

    let _ = writeln!(w, "\n### Tags that go with each digest (ARCHIVE + DELETE_CANDIDATE)\n");
    let _ = writeln!(
        w,
        "| image | verdict | probability | tags that go with it | child manifests | bytes |\n|---|---|---:|---|---|---:|"
    );
    for g in r.let_go.iter().take(MARKDOWN_LIST_CAP) {
        let _ = writeln!(
            w,
            "| `{}` | {} | {:.4} | {} | {} | {} |",
            g.key,
            g.class.as_str(),
            g.probability,
            cell(&g.tags.join(", ")),
            cell(&g.children.join(", ")),
            g.bytes.map_or_else(|| "-".to_owned(), |b| b.to_string())
        );
    }
    if r.let_go_total > r.let_go.len().min(MARKDOWN_LIST_CAP) as u64 {
        let _ = writeln!(
            w,
            "\n{} more (the JSON report lists up to {JSON_LIST_CAP}; the scores file has them all).",
            r.let_go_total - r.let_go.len().min(MARKDOWN_LIST_CAP) as u64
        );
    }

    let _ = writeln!(w, "\n### CronJobs\n");
    let _ = writeln!(
        w,
        "| CronJob | schedule | next run (UTC) | period | images it needs |\n|---|---|---|---|---|"
    );
    for c in &r.cron_jobs {
        let schedule = match (&c.error, &c.time_zone, c.suspended) {
            (Some(e), _, _) => format!("`{}` (unreadable: {})", c.schedule, e),
            (None, Some(tz), s) => format!("`{}` ({tz}){}", c.schedule, if s { ", suspended" } else { "" }),
            (None, None, s) => format!("`{}`{}", c.schedule, if s { " (suspended)" } else { "" }),
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            cell(&c.object.to_string()),
            cell(&schedule),
            when(c.next_run),
            c.period_secs.map_or_else(|| "-".to_owned(), format_duration),
            cell(&c.images.join(", "))
        );
    }

    let _ = writeln!(w, "\n### References that name no image of the inventory\n");
    let _ = writeln!(w, "| object | container | image | why |\n|---|---|---|---|");
    for u in r.unresolved_references.iter().take(MARKDOWN_LIST_CAP) {
        let _ = writeln!(
            w,
            "| {} | {} | `{}` | {} |",
            cell(&u.object.to_string()),
            cell(&u.container),
            u.image,
            u.why
        );
    }
    md
}
