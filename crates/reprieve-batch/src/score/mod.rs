//! Batch scoring of a whole inventory from files (`reprieve score`).
//!
//! 1. The inventory is streamed into a compact table: every key in one byte arena with a hash index over
//!    (tenant, key), per-object facts in 64 bytes (owners and content types interned) and, for objects that are
//!    read, [`HistoryStats`](reprieve_core::HistoryStats). Rows are parsed and interned on one thread while
//!    another indexes their keys and prefixes in blocks. Full records are built only when scored, a chunk at a
//!    time.
//! 2. One streaming pass over every access log folds each read into its object's stats; events are never stored,
//!    so memory is bounded by the inventory's object count, not the log volume. Parquet logs are read on several
//!    threads (row groups in turn, results merged in file order: the same numbers for any thread count), and a key
//!    repeated within a row group is looked up once (module `seen`). Reads are folded in up to four million
//!    at a time, sorted by object first, so that an object's stats are fetched from memory once per batch of reads.
//!    An event without a tenant (Apache and nginx logs name no bucket) matches its key in the default tenant
//!    (`""`) if the inventory has it there, else in the one inventory tenant that holds that key; when several
//!    tenants hold it the read is counted as ambiguous and attributed to none. Reads for keys not in the inventory
//!    are counted (totals, distinct keys up to [`UNKNOWN_KEYS_CAP`], the top [`UNKNOWN_TOP`] keys), never scored.
//! 3. Prefix activity (parent and top-level prefix per tenant) is aggregated over **every** inventory object, not
//!    only the shard's, so that the shards of a sharded run concatenate to exactly the unsharded result.
//! 4. Each object of the shard is scored with [`Engine::score_with_stats`] (the same features, model and policy as
//!    the server), on worker threads that take blocks of objects in turn and also format each row and tally it for
//!    the report; the blocks are handed on in order, and the rows are written, sorted by (tenant, key), to the
//!    scores file (see [`SCORE_COLUMNS`]) on a thread of their own. With [`run_score_into`] every verdict and its
//!    features go to a [`VerdictSink`] first (the audit trail).
//! 5. The report (Markdown, plus JSON with the same numbers) gives the verdict classes, the unused-storage
//!    metrics M1-M3, the most reclaimable prefixes and owners, what the hard rules held back, the readers'
//!    malformed-line counts and the reads for keys not in the inventory.

mod aggregate;
mod error;
mod index;
mod output;
mod prices;
mod progress;
mod report;
mod seen;

use std::path::{Path, PathBuf};

use reprieve_core::features::extract_image_with_stats;
use reprieve_core::{ImageFacts, ScopeState};
use reprieve_model::{Engine, Scored};

pub use self::aggregate::{KeyReads, Prepared, PreparedObject, UNKNOWN_KEYS_CAP, UNKNOWN_TOP, UnknownReads, prepare};
pub use self::error::BatchError;
use self::output::{CHUNK_ROWS, ScoreRows, ScoresWriter};
pub use self::output::{SCORE_COLUMNS, ScoresFormat};
pub use self::prices::{BYTES_PER_GB, PriceTable};
use self::progress::Progress;
use self::report::Tally;
pub use self::report::{
    ClassTotals, HELD_BACK_REASONS, HeldBack, Outputs, OwnerReclaim, PrefixReclaim, ScoreSummary, StorageClassCost,
    TOP_RECLAIMABLE, UnusedMetrics, render_markdown,
};
use crate::formats::ReadOptions;
use crate::inventory::InventoryOptions;

/// One scoring run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreJob {
    /// Generic CSV/Parquet inventory, or an S3 Inventory `manifest.json`.
    pub inventory: PathBuf,
    /// Access logs, in any supported format.
    pub logs: Vec<PathBuf>,
    /// Scoring time (Unix seconds); reads at or after it are ignored.
    pub at: i64,
    /// Scores file: `.parquet` -> Parquet, `.csv` -> CSV; any other extension is an error naming `--out`.
    pub out: PathBuf,
    /// Markdown report; a JSON report with the same numbers is written beside it (same stem, `.json`).
    pub report: Option<PathBuf>,
    /// `(i, N)`: score only the objects with `shard_of(tenant, key, N) == i`.
    pub shard: Option<(u32, u32)>,
    pub read_options: ReadOptions,
    pub inventory_options: InventoryOptions,
    /// When the logs start being complete; `None`: the earliest read (before `at`) seen in the logs.
    pub history_complete_since: Option<i64>,
    /// Storage prices for M3.
    pub prices: PriceTable,
    /// Show progress on stderr (only when stderr is a terminal).
    pub progress: bool,
}

impl ScoreJob {
    /// A job with default options: no report, no shard, default readers and prices, no progress.
    pub fn new(inventory: impl Into<PathBuf>, logs: Vec<PathBuf>, at: i64, out: impl Into<PathBuf>) -> Self {
        Self {
            inventory: inventory.into(),
            logs,
            at,
            out: out.into(),
            report: None,
            shard: None,
            read_options: ReadOptions::default(),
            inventory_options: InventoryOptions::default(),
            history_complete_since: None,
            prices: PriceTable::default(),
            progress: false,
        }
    }
}

/// Parses a `--shard` value `i/N` with `0 <= i < N`.
pub fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (i, n) = text
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not of the form i/N (e.g. 0/4)"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: shard index {i:?} is not a non-negative integer"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: shard count {n:?} is not a positive integer"))?;
    if n == 0 {
        return Err(format!("{text:?}: the shard count must be at least 1"));
    }
    if i >= n {
        return Err(format!(
            "{text:?}: the shard index must be less than the shard count {n}"
        ));
    }
    Ok((i, n))
}

/// The JSON report's path beside the Markdown report: same stem, `.json`.
pub fn json_report_path(report: &Path) -> PathBuf {
    report.with_extension("json")
}

fn check(job: &ScoreJob) -> Result<ScoresFormat, BatchError> {
    let format = ScoresFormat::from_path(&job.out)?;
    if let Some((i, n)) = job.shard
        && (n == 0 || i >= n)
    {
        return Err(BatchError::usage("--shard", format!("{i}/{n}: need 0 <= i < N")));
    }
    if let Some(report) = &job.report
        && json_report_path(report) == *report
    {
        return Err(BatchError::usage(
            "--report",
            format!(
                "{}: the Markdown report must not end in .json (the JSON report is written beside it)",
                report.display()
            ),
        ));
    }
    Ok(format)
}

/// Most scoring threads.
const MAX_THREADS: usize = 8;

/// Receives every verdict of a run, with the features it was computed from, before the verdicts' rows are
/// written: `reprieve score --data-dir` records them in the feedback store's audit trail, so that actions on batch
/// verdicts are attributed to their class and model version. An error stops the run (no scores file is left).
pub trait VerdictSink {
    /// Called once per scoring chunk (at most [`SCORE_CHUNK`] verdicts), in output order.
    fn record(&mut self, scored: &[Scored]) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// Verdicts handed to the [`VerdictSink`] and rows to the writer thread at a time (blocks of 1,024
/// objects, scored in parallel, are gathered in order into chunks).
pub const SCORE_CHUNK: usize = 16_384;

/// Scores one prepared object: [`Engine::score_with_stats`], or for a container image the same engine with the
/// image features filled in ([`score_image_with_stats`]).
pub fn score_object(engine: &Engine, object: &PreparedObject, scope: ScopeState) -> Scored {
    match &object.image {
        None => engine.score_with_stats(&object.record, &object.stats, scope),
        Some(image) => score_image_with_stats(engine, &object.record, &object.stats, image, scope),
    }
}

/// [`Engine::score_with_stats`] for a container image: the same model, domain check, thresholds and policy, on
/// the feature vector that includes the image features. With every image fact empty it gives exactly the engine's
/// verdict (tested). The image facts are not (yet) part of [`ObjectRecord`](reprieve_core::ObjectRecord), so the
/// features are extracted here and the engine decides from them.
pub fn score_image_with_stats(
    engine: &Engine,
    record: &reprieve_core::ObjectRecord,
    stats: &reprieve_core::HistoryStats,
    image: &ImageFacts,
    scope: ScopeState,
) -> Scored {
    let features = extract_image_with_stats(record, stats, Some(image));
    engine.score_features(record, stats.at, features, scope)
}

/// The objects a run scores, in output order: already built ([`Prepared::objects`]) or built one at a time from
/// the compact aggregate.
trait Objects: Sync {
    fn count(&self) -> usize;
    /// The `n`-th object: borrowed when the objects are already built, else built in `spare` (reusing the strings
    /// of the object built there before).
    fn get<'a>(&'a self, n: usize, spare: &'a mut Option<PreparedObject>) -> &'a PreparedObject;
    /// Reads (without using) the memory that building objects `range` needs, so that [`Self::get`] finds it in
    /// the cache.
    fn prefetch(&self, _range: std::ops::Range<usize>) {}
}

/// Objects whose memory is read ahead at once, this many objects before they are built.
const PREFETCH: usize = 16;

impl Objects for [PreparedObject] {
    fn count(&self) -> usize {
        self.len()
    }

    fn get<'a>(&'a self, n: usize, _spare: &'a mut Option<PreparedObject>) -> &'a PreparedObject {
        &self[n]
    }
}

impl Objects for aggregate::Aggregated {
    fn count(&self) -> usize {
        self.len()
    }

    fn get<'a>(&'a self, n: usize, spare: &'a mut Option<PreparedObject>) -> &'a PreparedObject {
        match spare {
            Some(object) => {
                self.object_into(n, object);
                object
            }
            None => spare.insert(self.object(n)),
        }
    }

    fn prefetch(&self, range: std::ops::Range<usize>) {
        self.touch(range);
    }
}

/// One scored block: its rows of the scores file in order, the report's tally of the block, and the verdicts in
/// order when they are wanted (for a [`VerdictSink`]; else empty).
type ScoredBlock = (ScoreRows, Tally, Vec<Scored>);

/// Builds, scores, formats and tallies objects `range` on this thread; each object is built in `spare` over the
/// previous one. `window_start`: the report's window (see [`Tally::new`]).
fn score_block<O: Objects + ?Sized>(
    engine: &Engine,
    objects: &O,
    range: std::ops::Range<usize>,
    window_start: Option<i64>,
    keep_verdicts: bool,
    spare: &mut Option<PreparedObject>,
) -> ScoredBlock {
    let end = range.end;
    let mut rows = ScoreRows::with_capacity(range.len());
    let mut tally = Tally::new(window_start);
    let mut verdicts = Vec::with_capacity(if keep_verdicts { range.len() } else { 0 });
    for n in range {
        if n % PREFETCH == 0 {
            objects.prefetch(n + PREFETCH..(n + 2 * PREFETCH).min(end));
        }
        let object = objects.get(n, spare);
        let scored = score_object(engine, object, ScopeState::default());
        tally.add(&object.record, &object.stats, &scored.verdict);
        rows.push(&object.record, &object.stats, &scored.verdict);
        if keep_verdicts {
            verdicts.push(scored);
        }
    }
    (rows, tally, verdicts)
}

/// Objects a scoring thread takes at a time: small enough that the threads run out of work together (a thread
/// that shares its core with the writer is not waited for), large enough that taking them costs nothing.
const SCORE_BLOCK: usize = 1_024;

/// Blocks that may be scored ahead of the next one to hand on, at most: a Parquet row group's worth of rows and two
/// chunks more. While the writer encodes a row group it takes no rows; were the scoring threads allowed less
/// ahead, they would wait for it with a core idle.
const BLOCKS_AHEAD: usize = (CHUNK_ROWS + 2 * SCORE_CHUNK) / SCORE_BLOCK;

// Whole blocks make a chunk: the sink is never handed more than `SCORE_CHUNK` verdicts at once.
const _: () = assert!(SCORE_CHUNK.is_multiple_of(SCORE_BLOCK));

/// Scored blocks on their way from the scoring threads to the thread that hands them on in order.
struct Handover {
    /// The block to hand on next: blocks from `next + BLOCKS_AHEAD` on are not scored yet.
    next: usize,
    ready: std::collections::BTreeMap<usize, ScoredBlock>,
    /// Scoring threads still running.
    running: usize,
    /// Handing on ended (normally or on an error) or a scoring thread panicked: the scoring threads stop taking
    /// blocks, and a block not yet handed on is not waited for (the scope re-raises the panic).
    stopped: bool,
}

/// A [`Handover`] and the condition variable its waiters sleep on.
type SharedHandover = (std::sync::Mutex<Handover>, std::sync::Condvar);

fn lock_handover(shared: &SharedHandover) -> std::sync::MutexGuard<'_, Handover> {
    shared.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts a scoring thread out of [`Handover::running`] when it ends, and stops the others when it ends by a
/// panic: its block will never come, so they must not wait for it to be handed on.
struct Running<'a>(&'a SharedHandover);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut handover = lock_handover(self.0);
        handover.running -= 1;
        handover.stopped |= std::thread::panicking();
        drop(handover);
        self.0.1.notify_all();
    }
}

/// Stops the scoring threads when the handing on ends, normally, on an error or by a panic (the scope it runs
/// in waits for them).
struct StopScoring<'a>(&'a SharedHandover);

impl Drop for StopScoring<'_> {
    fn drop(&mut self) {
        lock_handover(self.0).stopped = true;
        self.0.1.notify_all();
    }
}

/// A scoring thread: takes the next block until none is left (or handing on stopped), waiting while it would be
/// more than [`BLOCKS_AHEAD`] blocks ahead, and leaves each scored block in the handover.
fn score_blocks(
    shared: &SharedHandover,
    taken: &std::sync::atomic::AtomicUsize,
    blocks: usize,
    score: impl Fn(usize, &mut Option<PreparedObject>) -> ScoredBlock,
) {
    let _running = Running(shared);
    let mut spare = None;
    loop {
        let block = taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if block >= blocks {
            return;
        }
        {
            let mut handover = lock_handover(shared);
            while block >= handover.next + BLOCKS_AHEAD && !handover.stopped {
                handover = shared
                    .1
                    .wait(handover)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if handover.stopped {
                return;
            }
        }
        let scored = score(block, &mut spare);
        lock_handover(shared).ready.insert(block, scored);
        shared.1.notify_all();
    }
}

/// The next block in order from the scoring threads; `None` if it will not come (a scoring thread panicked).
fn next_block(shared: &SharedHandover, block: usize) -> Option<ScoredBlock> {
    let mut handover = lock_handover(shared);
    loop {
        if let Some(scored) = handover.ready.remove(&block) {
            handover.next = block + 1;
            shared.1.notify_all();
            return Some(scored);
        }
        if handover.stopped || handover.running == 0 {
            return None;
        }
        handover = shared
            .1
            .wait(handover)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// Scores every inventory object of the job's shard, writes the scores file and, if asked, the reports.
pub fn run_score(job: &ScoreJob, engine: &Engine) -> Result<ScoreSummary, BatchError> {
    run_score_into(job, engine, None)
}

/// [`run_score`], handing every verdict to `sink` (if any) before it is written.
pub fn run_score_into(
    job: &ScoreJob,
    engine: &Engine,
    sink: Option<&mut dyn VerdictSink>,
) -> Result<ScoreSummary, BatchError> {
    check(job)?;
    let mut progress = Progress::new(job.progress);
    let mut aggregated = aggregate::aggregate(job, &mut progress)?;
    let facts = RunFacts {
        history_complete_since: aggregated.history_complete_since,
        inventory_objects: aggregated.inventory_objects,
        duplicate_rows: aggregated.duplicate_rows,
        inventory_report: std::mem::take(&mut aggregated.inventory_report),
        log_reports: std::mem::take(&mut aggregated.log_reports),
        reads_at_or_after: aggregated.reads_at_or_after,
        reads_ambiguous_tenant: aggregated.reads_ambiguous_tenant,
        unknown: std::mem::take(&mut aggregated.unknown),
    };
    let mut summary = score_objects(job, &aggregated, facts, engine, sink)?;
    if let Some(md_path) = &job.report {
        write_reports(&mut summary, md_path, "", None)?;
    }
    log_summary(&summary);
    Ok(summary)
}

/// The run's facts from reading the inputs, for the summary.
struct RunFacts {
    history_complete_since: Option<i64>,
    inventory_objects: u64,
    duplicate_rows: u64,
    inventory_report: crate::formats::ReadReport,
    log_reports: Vec<crate::formats::ReadReport>,
    reads_at_or_after: u64,
    reads_ambiguous_tenant: u64,
    unknown: UnknownReads,
}

/// Scores already prepared objects (from [`prepare`], or another front door's readers such as the container-image
/// readers) and writes the scores file; the reports are left to the caller ([`write_reports`]). Of `job` only the
/// scoring time, `out`, `shard`, `prices` and `progress` are used: the inventory and the logs were read already.
pub fn score_prepared(
    job: &ScoreJob,
    prepared: Prepared,
    engine: &Engine,
    sink: Option<&mut dyn VerdictSink>,
) -> Result<ScoreSummary, BatchError> {
    let facts = RunFacts {
        history_complete_since: prepared.history_complete_since,
        inventory_objects: prepared.inventory_objects,
        duplicate_rows: prepared.duplicate_rows,
        inventory_report: prepared.inventory_report,
        log_reports: prepared.log_reports,
        reads_at_or_after: prepared.reads_at_or_after,
        reads_ambiguous_tenant: prepared.reads_ambiguous_tenant,
        unknown: prepared.unknown,
    };
    score_objects(job, prepared.objects.as_slice(), facts, engine, sink)
}

/// Scores `objects` and writes their rows: worker threads take blocks of objects in turn and build, score, format
/// and tally them ([`score_blocks`]), while this thread hands the blocks on in order, a chunk at a time, to the sink
/// and the writer thread. At most [`BLOCKS_AHEAD`] blocks are scored ahead of the one handed on next.
fn score_objects<O: Objects + ?Sized>(
    job: &ScoreJob,
    objects: &O,
    facts: RunFacts,
    engine: &Engine,
    mut sink: Option<&mut dyn VerdictSink>,
) -> Result<ScoreSummary, BatchError> {
    let format = check(job)?;
    let mut progress = Progress::new(job.progress);
    let writer = ScoresWriter::create(&job.out, format)?;
    let mut tally = Tally::new(facts.history_complete_since);
    let threads = aggregate::threads();
    let total = objects.count();
    let blocks = total.div_ceil(SCORE_BLOCK);
    let mut scored_objects = 0u64;
    let window_start = facts.history_complete_since;
    let keep_verdicts = sink.is_some();
    let shared: SharedHandover = (
        std::sync::Mutex::new(Handover {
            next: 0,
            ready: std::collections::BTreeMap::new(),
            running: threads,
            stopped: false,
        }),
        std::sync::Condvar::new(),
    );
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let score = |block: usize, spare: &mut Option<PreparedObject>| {
        let range = block * SCORE_BLOCK..((block + 1) * SCORE_BLOCK).min(total);
        score_block(engine, objects, range, window_start, keep_verdicts, spare)
    };
    let scores = std::thread::scope(|s| {
        // The scores file is written on its own thread, so that encoding a row group never holds up the scoring.
        let (to_writer, rows_in) = std::sync::mpsc::sync_channel::<ToWriter>(2);
        let writing = s.spawn(move || write_rows(writer, rows_in));
        for _ in 0..threads {
            s.spawn(|| score_blocks(&shared, &taken, blocks, score));
        }
        let stop_scoring = StopScoring(&shared);
        // Blocks are handed on in order, to the sink and the writer a chunk's worth at a time.
        let handing_on = (|| {
            let mut rows = Vec::new();
            let mut rows_len = 0;
            let mut verdicts = Vec::new();
            for block in 0..blocks {
                let Some((block_rows, block_tally, block_verdicts)) = next_block(&shared, block) else {
                    return Ok(()); // a scoring thread panicked: the scope re-raises it
                };
                tally.merge(block_tally);
                rows_len += block_rows.len();
                rows.push(block_rows);
                verdicts.extend(block_verdicts);
                if rows_len >= SCORE_CHUNK || block + 1 == blocks {
                    if let Some(sink) = sink.as_mut() {
                        sink.record(&verdicts).map_err(BatchError::Sink)?;
                    }
                    verdicts.clear();
                    scored_objects += rows_len as u64;
                    rows_len = 0;
                    if to_writer.send(ToWriter::Rows(std::mem::take(&mut rows))).is_err() {
                        // The writer stopped on an error, which it returns below.
                        return Ok(());
                    }
                    progress.tick_now("objects scored", scored_objects);
                }
            }
            // The writer finishes the file only when told to: without this it removes the partial file.
            let _ = to_writer.send(ToWriter::Finish);
            Ok::<_, BatchError>(())
        })();
        drop(stop_scoring);
        drop(to_writer);
        let written = writing.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        handing_on?;
        written?.ok_or_else(|| BatchError::io(&job.out, std::io::Error::other("the scores writer stopped early")))
    })?;
    progress.done("objects scored", scored_objects);

    let t = tally.finish(job.at, &job.prices);
    Ok(ScoreSummary {
        at: job.at,
        model_version: engine.model.version().to_owned(),
        shard: job.shard,
        history_complete_since: facts.history_complete_since,
        inventory_objects: facts.inventory_objects,
        duplicate_inventory_rows: facts.duplicate_rows,
        objects_scored: t.objects_scored,
        bytes: t.bytes,
        by_class: t.by_class,
        reads_counted: t.reads_counted,
        reads_at_or_after: facts.reads_at_or_after,
        reads_ambiguous_tenant: facts.reads_ambiguous_tenant,
        unknown_reads: facts.unknown,
        unused: t.unused,
        top_prefixes: t.top_prefixes,
        top_owners: t.top_owners,
        held_back: t.held_back,
        prices: job.prices,
        inventory_report: facts.inventory_report,
        log_reports: facts.log_reports,
        outputs: Outputs {
            scores,
            report_md: None,
            report_json: None,
        },
    })
}

/// What the scoring thread hands the writer thread.
enum ToWriter {
    Rows(Vec<ScoreRows>),
    /// Every row was sent: finish the file.
    Finish,
}

/// The writer thread: writes the rows it receives and, on [`ToWriter::Finish`], finishes the file (`Some(path)`).
/// If the channel closes first (the run failed) the writer is dropped, which removes its partial file (`None`).
fn write_rows(
    mut writer: ScoresWriter,
    rows_in: std::sync::mpsc::Receiver<ToWriter>,
) -> Result<Option<PathBuf>, BatchError> {
    for message in rows_in {
        match message {
            ToWriter::Rows(blocks) => {
                for block in blocks {
                    writer.push(block)?;
                }
            }
            ToWriter::Finish => return writer.finish().map(Some),
        }
    }
    Ok(None)
}

/// Writes the Markdown report to `md_path` and the JSON report beside it, and records both in
/// `summary.outputs`. `extra_markdown` is appended to the Markdown; `extra_json` = `(name, value)` adds a
/// top-level member to the JSON (a front door's own section, e.g. `images`).
pub fn write_reports(
    summary: &mut ScoreSummary,
    md_path: &Path,
    extra_markdown: &str,
    extra_json: Option<(&str, serde_json::Value)>,
) -> Result<(), BatchError> {
    let json_path = json_report_path(md_path);
    summary.outputs.report_md = Some(md_path.to_path_buf());
    summary.outputs.report_json = Some(json_path.clone());
    let json_error = |e| BatchError::Json {
        path: json_path.clone(),
        source: e,
    };
    /// The summary's members in their declared order, then the extra section.
    #[derive(serde::Serialize)]
    struct WithExtra<'a> {
        #[serde(flatten)]
        summary: &'a ScoreSummary,
        #[serde(flatten)]
        extra: std::collections::BTreeMap<&'a str, serde_json::Value>,
    }
    let value = WithExtra {
        summary,
        extra: extra_json.into_iter().collect(),
    };
    let json = serde_json::to_string_pretty(&value).map_err(json_error)?;
    std::fs::write(&json_path, json + "\n").map_err(|e| BatchError::io(&json_path, e))?;
    let mut md = render_markdown(summary);
    md.push_str(extra_markdown);
    std::fs::write(md_path, md).map_err(|e| BatchError::io(md_path, e))?;
    Ok(())
}

fn log_summary(summary: &ScoreSummary) {
    tracing::info!(
        objects = summary.objects_scored,
        bytes = summary.bytes,
        reads = summary.reads_counted,
        out = %summary.outputs.scores.display(),
        "scored inventory"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects whose building panics at one index.
    struct PanicsAt {
        objects: Vec<PreparedObject>,
        panic_at: usize,
    }

    impl Objects for PanicsAt {
        fn count(&self) -> usize {
            self.objects.len()
        }

        fn get<'a>(&'a self, n: usize, _spare: &'a mut Option<PreparedObject>) -> &'a PreparedObject {
            assert!(n != self.panic_at, "object {n} cannot be built");
            &self.objects[n]
        }
    }

    /// A scoring thread that panics fails the run, the panic reaches the caller, and nothing waits for ever: not
    /// the thread handing blocks on, nor the other scoring threads (which would otherwise wait to run ahead).
    #[test]
    fn a_panicking_scoring_thread_fails_the_run_without_hanging() {
        let at = 1_800_000_000;
        let model =
            reprieve_model::Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default.json"))
                .expect("bundled model");
        let engine = Engine::new(std::sync::Arc::new(model), reprieve_core::PolicyConfig::default());
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("scores.parquet");
        let job = ScoreJob::new(dir.path().join("inventory.csv"), Vec::new(), at, &out);
        let object = |i: usize| PreparedObject {
            record: reprieve_core::ObjectRecord {
                key: format!("img/{i:06}.png"),
                ..reprieve_core::ObjectRecord::default()
            },
            stats: reprieve_core::HistoryStats::new(at),
            image: None,
        };
        // Many more blocks than may run ahead, and the panic early: the other thread reaches its limit.
        for panic_at in [0, 3 * SCORE_BLOCK + 5, 40 * SCORE_BLOCK] {
            let objects = PanicsAt {
                objects: (0..(BLOCKS_AHEAD + 60) * SCORE_BLOCK).map(object).collect(),
                panic_at,
            };
            let facts = RunFacts {
                history_complete_since: None,
                inventory_objects: objects.objects.len() as u64,
                duplicate_rows: 0,
                inventory_report: crate::formats::ReadReport::new(
                    &job.inventory,
                    crate::formats::SourceFormat::InventoryCsv,
                ),
                log_reports: Vec::new(),
                reads_at_or_after: 0,
                reads_ambiguous_tenant: 0,
                unknown: UnknownReads::default(),
            };
            // On a thread of its own, so that a hang fails the test (after a bound far beyond the run's
            // milliseconds) instead of stalling the suite.
            let (done, finished) = std::sync::mpsc::channel();
            let (job, engine) = (job.clone(), engine.clone());
            std::thread::spawn(move || {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    score_objects(&job, &objects, facts, &engine, None).map(|_| ())
                }));
                let _ = done.send(run.is_err());
            });
            let panicked = finished
                .recv_timeout(std::time::Duration::from_secs(300))
                .expect("the run ends");
            assert!(panicked, "the panic at {panic_at} reaches the caller");
            assert!(!out.exists(), "no scores file is left");
        }
    }

    #[test]
    fn shards_parse() {
        assert_eq!(parse_shard("0/3"), Ok((0, 3)));
        assert_eq!(parse_shard(" 2 / 3 "), Ok((2, 3)));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("-1/3").is_err());
        assert!(parse_shard("1").is_err());
    }

    #[test]
    fn out_extension_names_the_flag() {
        let e = ScoresFormat::from_path(Path::new("scores.txt")).expect_err("refused");
        assert!(e.to_string().starts_with("--out: "), "{e}");
        assert_eq!(
            ScoresFormat::from_path(Path::new("a/S.PARQUET")).ok(),
            Some(ScoresFormat::Parquet)
        );
        assert_eq!(
            ScoresFormat::from_path(Path::new("s.csv")).ok(),
            Some(ScoresFormat::Csv)
        );
    }
}
