//! `reprieve feedback ...`: the feedback store from the command line (audit trail, actions and restores from
//! files, realized precision, breakers, the training export), and the audit sink of `reprieve score --data-dir`.
//!
//! Every subcommand opens the store in `--data-dir` and never creates one: a missing directory is an error, so a
//! mistyped path cannot start an empty store. sled allows one process per store, so while `reprieve serve` has the
//! directory open these commands fail with one line saying so.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use reprieve_batch::score::VerdictSink;
use reprieve_core::time::{format_duration, format_rfc3339, parse_duration, parse_time};
use reprieve_core::{FeatureSchema, VerdictClass};
use reprieve_eval::feedback::{FeedbackRow, write_feedback};
use reprieve_model::Scored;
use reprieve_server::ServerConfig;
use reprieve_store::{
    ActionKind, AuditRecord, BreakerEventKind, DEFAULT_DATA_DIR, PrecisionFilter, Store, StoreConfig, StoreError,
};

use crate::commands::now_unix;
use crate::feedback_files::{BadRow, FileFormat, Parsed, parse_actions, parse_restores};

/// Audit trail, actions and restores, realized precision, breakers, and the export for retraining.
#[derive(Debug, Args)]
pub struct FeedbackArgs {
    /// The feedback store's directory (the one `reprieve serve` and `reprieve score --data-dir` write)
    /// [default: the config file's `store.data_dir`, else ./reprieve-data].
    #[arg(long, env = "REPRIEVE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The server's TOML configuration: its `[store]` section (directory, restore window, breaker target and
    /// minimum) applies here too, so that the CLI matches restores and labels exports as the server does.
    #[arg(long, env = "REPRIEVE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: FeedbackCommand,
}

#[derive(Debug, Subcommand)]
enum FeedbackCommand {
    /// The audited verdicts of one object (newest first), or of a time range (oldest first).
    Show(ShowArgs),
    /// Record actions taken on verdicts from a CSV or JSON Lines file (idempotent by event_id).
    ///
    /// Columns (a CSV header row, any order) or JSON fields: event_id, tenant (optional), key, verdict_id, action
    /// (archived, soft_deleted, hard_deleted or ignored), at (Unix seconds or RFC 3339). Bad rows are skipped and
    /// listed with their line numbers on stderr; --strict refuses the whole file instead.
    Actions(FileArgs),
    /// Record restores from a CSV or JSON Lines file (idempotent by event_id), matched to the actions they undo.
    ///
    /// Columns (a CSV header row, any order) or JSON fields: event_id, tenant (optional), key, at (when restored),
    /// requested_at (optional: when the need arose, not after at). A restore within the restore window (30 days
    /// unless configured) of the latest action (not ignored) on the same object marks that action a false positive.
    Restores(FileArgs),
    /// Realized precision per model version x verdict class x tenant x top-level prefix.
    Precision(PrecisionArgs),
    /// Every breaker scope with its state; with --events, the log of opens, resets and promotions.
    Breakers(BreakersArgs),
    /// Close one scope's breaker and restart its count (recorded with operator and reason).
    ResetBreaker(ResetArgs),
    /// Write acted-on verdicts with their features and restore labels, for `reprieve train --feedback`.
    Export(ExportArgs),
}

/// Output of the report-like subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).multiple(true).args(["key", "from", "to"])))]
struct ShowArgs {
    /// Object key.
    #[arg(long)]
    key: Option<String>,
    /// Tenant of --key (empty: the default tenant).
    #[arg(long, default_value = "", requires = "key")]
    tenant: String,
    /// Only verdicts scored at or after this time (Unix seconds or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    from: Option<i64>,
    /// Only verdicts scored at or before this time.
    #[arg(long, value_parser = parse_time)]
    to: Option<i64>,
    /// Most verdicts shown.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Args)]
struct FileArgs {
    /// CSV with a header row, or JSON Lines (the columns are listed above).
    #[arg(long)]
    file: PathBuf,
    /// File format [default: by extension, else by content].
    #[arg(long = "file-format", value_enum, default_value = "auto")]
    file_format: FileFormat,
    /// Refuse the whole file (record nothing) if any row is bad, instead of skipping bad rows.
    #[arg(long)]
    strict: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Args)]
struct PrecisionArgs {
    /// Only this model version.
    #[arg(long)]
    model: Option<String>,
    /// Only this verdict class (ARCHIVE, DELETE_CANDIDATE, ...).
    #[arg(long, value_parser = parse_class)]
    class: Option<VerdictClass>,
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only this top-level prefix, with its slash (`img/`).
    #[arg(long)]
    prefix: Option<String>,
    /// Count actions taken within this long before --at (`30d`, `12w`), or `all`.
    #[arg(long, default_value = "90d", value_parser = parse_window)]
    window: Window,
    /// The end of the window (Unix seconds or RFC 3339) [default: now].
    #[arg(long, value_parser = parse_time)]
    at: Option<i64>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Args)]
struct BreakersArgs {
    /// Also list the breaker event log (opens, resets, closings by promotion), oldest first.
    #[arg(long)]
    events: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Args)]
struct ResetArgs {
    /// Model version of the scope.
    #[arg(long)]
    model: String,
    /// Tenant of the scope (`--tenant ''` for the default tenant).
    #[arg(long)]
    tenant: String,
    /// Top-level prefix of the scope, with its slash (`img/`; `''` for keys without one).
    #[arg(long)]
    prefix: String,
    /// Who resets it (recorded).
    #[arg(long)]
    operator: String,
    /// Why (recorded).
    #[arg(long)]
    reason: String,
    /// When the count restarts [default: now].
    #[arg(long, value_parser = parse_time)]
    at: Option<i64>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Output file (Parquet; written via `<out>.partial` and renamed when complete).
    #[arg(long, value_parser = parse_parquet_path)]
    out: PathBuf,
    /// Labels as known at this time (Unix seconds or RFC 3339): a verdict is exported once restored, or once the
    /// restore window of its latest action has closed [default: now].
    #[arg(long, value_parser = parse_time)]
    at: Option<i64>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// A precision window: a duration, or everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Secs(i64),
    All,
}

fn parse_window(text: &str) -> Result<Window, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(Window::All);
    }
    parse_duration(text)
        .map(Window::Secs)
        .map_err(|e| format!("{e}, or `all`"))
}

fn parse_class(text: &str) -> Result<VerdictClass, String> {
    VerdictClass::parse(text)
        .ok_or_else(|| format!("unknown class {text:?}; expected RETAIN, REVIEW, ARCHIVE or DELETE_CANDIDATE"))
}

fn parse_parquet_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("parquet") => Ok(path),
        _ => Err(format!("{text}: the export is Parquet; name it *.parquet")),
    }
}

/// Opens the store in `dir`; with `create` a missing or empty directory becomes a new store, otherwise it is an
/// error. A store held by another process is one readable error.
pub fn open_store(dir: &Path, create: bool) -> anyhow::Result<Store> {
    open_store_with(dir, create, StoreConfig::default())
}

fn open_store_with(dir: &Path, create: bool, config: StoreConfig) -> anyhow::Result<Store> {
    if !create && !Store::exists(dir) {
        bail!(
            "no feedback store at {}: the directory is missing or holds no store (`reprieve serve` and `reprieve \
             score --data-dir` create one; --data-dir, REPRIEVE_DATA_DIR or the config's store.data_dir chooses it)",
            dir.display()
        );
    }
    Store::open(dir, config).map_err(|e| match e {
        StoreError::Locked { .. } => anyhow::anyhow!(
            "{e}; is `reprieve serve` running on it? Stop it, or use the gRPC Feedback service while it runs"
        ),
        other => other.into(),
    })
}

pub fn run(args: FeedbackArgs) -> anyhow::Result<()> {
    let (config_dir, config) = match &args.config {
        Some(path) => {
            let server = ServerConfig::from_file(path)?;
            server
                .store
                .check()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            (Some(server.store.data_dir.clone()), server.store.store_config())
        }
        None => (None, StoreConfig::default()),
    };
    let dir = args
        .data_dir
        .or(config_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let store = open_store_with(&dir, false, config)?;
    match args.command {
        FeedbackCommand::Show(a) => show(&store, a),
        FeedbackCommand::Actions(a) => record_file(&store, a, Kind::Actions),
        FeedbackCommand::Restores(a) => record_file(&store, a, Kind::Restores),
        FeedbackCommand::Precision(a) => precision(&store, a),
        FeedbackCommand::Breakers(a) => breakers(&store, a),
        FeedbackCommand::ResetBreaker(a) => reset_breaker(&store, a),
        FeedbackCommand::Export(a) => export(&store, a),
    }
}

/// Writes `text` to stdout.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

fn emit_json(value: &serde_json::Value) -> anyhow::Result<()> {
    emit(&(serde_json::to_string_pretty(value).context("cannot encode JSON")? + "\n"))
}

/// Left-aligned columns separated by two spaces, no trailing spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn time_cell(t: Option<i64>) -> String {
    match t {
        Some(t) if t != i64::MIN => format_rfc3339(t),
        _ => "-".into(),
    }
}

fn show(store: &Store, args: ShowArgs) -> anyhow::Result<()> {
    let from = args.from.unwrap_or(i64::MIN);
    let to = args.to.unwrap_or(i64::MAX);
    let records: Vec<AuditRecord> = match &args.key {
        Some(key) => store
            .verdicts_for_key(&args.tenant, key, usize::MAX)?
            .into_iter()
            .filter(|r| (from..=to).contains(&r.verdict.scored_at))
            .take(args.limit)
            .collect(),
        None => store.verdicts_between(from, to, args.limit)?,
    };
    match args.format {
        Format::Json => emit_json(&serde_json::to_value(&records).context("cannot encode JSON")?),
        Format::Table => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    let v = &r.verdict;
                    vec![
                        format_rfc3339(v.scored_at),
                        v.class.as_str().to_string(),
                        format!("{:.4}", v.probability),
                        v.model_version.clone(),
                        r.source.clone(),
                        v.verdict_id.clone(),
                        v.tenant.clone(),
                        v.key.clone(),
                        v.reasons.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("|"),
                    ]
                })
                .collect();
            let header = [
                "scored_at",
                "class",
                "probability",
                "model_version",
                "source",
                "verdict_id",
                "tenant",
                "key",
                "reasons",
            ];
            emit(&table(&header, &rows))?;
            if records.is_empty() {
                emit("(no audited verdicts match)\n")?;
            }
            Ok(())
        }
    }
}

/// Which events a file holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Actions,
    Restores,
}

/// Events recorded per store request: each request is one atomic, durable batch.
const RECORD_CHUNK: usize = 10_000;

/// Bad rows listed on stderr (all are counted).
const BAD_ROWS_SHOWN: usize = 20;

/// Bad rows listed in the JSON answer (all are counted in `bad_rows`).
const BAD_ROWS_LISTED: usize = 1_000;

fn record_file(store: &Store, args: FileArgs, kind: Kind) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let format = args.file_format.resolve(&args.file, &bytes);
    let name = args.file.display().to_string();
    let file_error = |e| anyhow::anyhow!("{name}: {e}");
    let (rows, bad, ack) = match kind {
        Kind::Actions => {
            let p = parse_actions(&bytes, format).map_err(file_error)?;
            check_strict(&name, &p, args.strict)?;
            let ack = record_chunks(&p.events, |c| store.record_actions(c))?;
            (p.rows, p.bad, ack)
        }
        Kind::Restores => {
            let p = parse_restores(&bytes, format).map_err(file_error)?;
            check_strict(&name, &p, args.strict)?;
            let ack = record_chunks(&p.events, |c| store.record_restores(c))?;
            (p.rows, p.bad, ack)
        }
    };
    let mut err = std::io::stderr().lock();
    for b in bad.iter().take(BAD_ROWS_SHOWN) {
        let _ = writeln!(err, "{name}:{}: skipped: {}", b.line, b.reason);
    }
    if bad.len() > BAD_ROWS_SHOWN {
        let _ = writeln!(err, "{name}: ... and {} more bad rows", bad.len() - BAD_ROWS_SHOWN);
    }
    drop(err);
    match args.format {
        Format::Json => emit_json(&serde_json::json!({
            "file": name,
            "format": format.name(),
            "rows": rows,
            "bad_rows": bad.len(),
            "bad": &bad[..bad.len().min(BAD_ROWS_LISTED)],
            "accepted": ack.accepted,
            "duplicates": ack.duplicates,
            "matched": ack.matched,
            "unknown_verdicts": ack.unknown_verdicts,
        })),
        Format::Table => {
            let mut text = format!("{name} ({}): {rows} rows, {} bad\n", format.name(), bad.len());
            let mut counts = vec![
                ("accepted", ack.accepted),
                ("duplicates", ack.duplicates),
                ("matched", ack.matched),
            ];
            if let Kind::Actions = kind {
                counts.push(("unknown verdicts", ack.unknown_verdicts));
            }
            for (label, n) in counts {
                text.push_str(&format!("{label:<17} {n}\n"));
            }
            emit(&text)
        }
    }
}

fn check_strict<T>(name: &str, parsed: &Parsed<T>, strict: bool) -> anyhow::Result<()> {
    if let (true, Some(BadRow { line, reason })) = (strict, parsed.bad.first()) {
        bail!(
            "{name}:{line}: {reason} ({} bad rows; --strict records nothing)",
            parsed.bad.len()
        );
    }
    Ok(())
}

/// Records `events` in chunks, summing the acknowledgements. Ids make a re-run after a failed chunk safe.
fn record_chunks<T>(
    events: &[T],
    mut record: impl FnMut(&[T]) -> Result<reprieve_store::Ack, StoreError>,
) -> anyhow::Result<reprieve_store::Ack> {
    let mut total = reprieve_store::Ack::default();
    for chunk in events.chunks(RECORD_CHUNK) {
        let ack = record(chunk)?;
        total.accepted += ack.accepted;
        total.duplicates += ack.duplicates;
        total.matched += ack.matched;
        total.unknown_verdicts += ack.unknown_verdicts;
    }
    Ok(total)
}

fn precision(store: &Store, args: PrecisionArgs) -> anyhow::Result<()> {
    let at = args.at.unwrap_or_else(now_unix);
    let since = match args.window {
        Window::Secs(s) => Some(at.saturating_sub(s)),
        Window::All => None,
    };
    let filter = PrecisionFilter {
        model_version: args.model,
        class: args.class,
        tenant: args.tenant,
        prefix: args.prefix,
        since,
    };
    let rows = store.precision(&filter)?;
    match args.format {
        Format::Json => emit_json(&serde_json::json!({
            "since": since,
            "rows": rows,
        })),
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        if r.model_version.is_empty() {
                            "(not audited)".to_string()
                        } else {
                            r.model_version.clone()
                        },
                        r.class.map_or("-", VerdictClass::as_str).to_string(),
                        r.tenant.clone(),
                        r.prefix.clone(),
                        r.actions.to_string(),
                        r.restores.to_string(),
                        format!("{:.4}", r.false_delete_rate),
                        format!("{:.4}", r.false_delete_upper_95),
                        r.median_time_to_recover_secs
                            .map_or("-".into(), |s| format_duration(s.round() as i64)),
                        if r.breaker_open { "OPEN" } else { "closed" }.to_string(),
                    ]
                })
                .collect();
            let header = [
                "model_version",
                "class",
                "tenant",
                "prefix",
                "actions",
                "restores",
                "false_delete_rate",
                "upper_95",
                "median_ttr",
                "breaker",
            ];
            let mut text = format!(
                "actions since {}\n{}",
                since.map_or("the beginning".to_string(), format_rfc3339),
                table(&header, &cells)
            );
            if cells.is_empty() {
                text.push_str("(no actions match)\n");
            }
            emit(&text)
        }
    }
}

fn breakers(store: &Store, args: BreakersArgs) -> anyhow::Result<()> {
    let scopes = store.breakers();
    let events = if args.events {
        store.breaker_events()?
    } else {
        Vec::new()
    };
    let config = store.config();
    match args.format {
        Format::Json => {
            let scopes: Vec<serde_json::Value> = scopes
                .iter()
                .map(|(scope, state)| serde_json::json!({"scope": scope, "state": state}))
                .collect();
            let mut value = serde_json::json!({
                "breaker_target": config.breaker_target,
                "breaker_min_actions": config.breaker_min_actions,
                "scopes": scopes,
            });
            if args.events {
                value["events"] = serde_json::to_value(&events).context("cannot encode JSON")?;
            }
            emit_json(&value)
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = scopes
                .iter()
                .map(|(s, st)| {
                    vec![
                        s.model_version.clone(),
                        s.tenant.clone(),
                        s.prefix.clone(),
                        if st.open { "OPEN" } else { "closed" }.to_string(),
                        st.actions.to_string(),
                        st.restored.to_string(),
                        format!("{:.4}", reprieve_model::stats::upper_95(st.restored, st.actions)),
                        time_cell(Some(st.counting_since)),
                        time_cell(st.opened_at),
                    ]
                })
                .collect();
            let header = [
                "model_version",
                "tenant",
                "prefix",
                "breaker",
                "deletes",
                "restored",
                "upper_95",
                "counting_since",
                "opened_at",
            ];
            let mut text = format!(
                "a breaker opens at >= {} deletes when the 95% bound exceeds {}\n{}",
                config.breaker_min_actions,
                config.breaker_target,
                table(&header, &rows)
            );
            if args.events {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        let what = match &e.kind {
                            BreakerEventKind::Opened {
                                actions,
                                restored,
                                upper_95,
                            } => format!("opened: {restored}/{actions} restored, bound {upper_95:.4}"),
                            BreakerEventKind::Reset {
                                operator,
                                reason,
                                was_open,
                            } => format!(
                                "reset by {operator} ({}): {reason}",
                                if *was_open { "was open" } else { "was closed" }
                            ),
                            BreakerEventKind::ClosedByPromotion { promoted_version } => {
                                format!("closed by promoting {promoted_version}")
                            }
                        };
                        vec![
                            format_rfc3339(e.at),
                            e.scope.model_version.clone(),
                            e.scope.tenant.clone(),
                            e.scope.prefix.clone(),
                            what,
                        ]
                    })
                    .collect();
                text.push('\n');
                if rows.is_empty() {
                    text.push_str("(no breaker events)\n");
                } else {
                    text.push_str(&table(&["at", "model_version", "tenant", "prefix", "event"], &rows));
                }
            }
            emit(&text)
        }
    }
}

fn reset_breaker(store: &Store, args: ResetArgs) -> anyhow::Result<()> {
    let known = store
        .breakers()
        .into_iter()
        .any(|(s, _)| s.model_version == args.model && s.tenant == args.tenant && s.prefix == args.prefix);
    if !known {
        bail!(
            "no breaker for model {:?}, tenant {:?}, prefix {:?}: `reprieve feedback breakers` lists the scopes",
            args.model,
            args.tenant,
            args.prefix
        );
    }
    let at = args.at.unwrap_or_else(now_unix);
    let was_open = store.reset_breaker(
        &args.model,
        &args.tenant,
        &args.prefix,
        &args.operator,
        &args.reason,
        at,
    )?;
    match args.format {
        Format::Json => emit_json(&serde_json::json!({
            "model_version": args.model,
            "tenant": args.tenant,
            "prefix": args.prefix,
            "was_open": was_open,
            "counting_since": at,
        })),
        Format::Table => emit(&format!(
            "breaker of {} / {:?} / {:?} reset by {} ({}); deletes count again from {}\n",
            args.model,
            args.tenant,
            args.prefix,
            args.operator,
            if was_open { "it was open" } else { "it was closed" },
            format_rfc3339(at)
        )),
    }
}

/// The export's name of an action kind.
fn action_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Archived => "ARCHIVED",
        ActionKind::SoftDeleted => "SOFT_DELETED",
        ActionKind::HardDeleted => "HARD_DELETED",
        ActionKind::Ignored => "IGNORED",
    }
}

fn export(store: &Store, args: ExportArgs) -> anyhow::Result<()> {
    let at = args.at.unwrap_or_else(now_unix);
    let started = std::time::Instant::now();
    let rows = store.acted_verdicts(at)?.map(|a| FeedbackRow {
        verdict_id: a.record.verdict.verdict_id,
        tenant: a.record.verdict.tenant,
        key: a.record.verdict.key,
        model_version: a.record.verdict.model_version,
        class: a.record.verdict.class,
        probability: a.record.verdict.probability,
        scored_at: a.record.verdict.scored_at,
        source: a.record.source,
        action: action_name(a.action.kind).to_string(),
        acted_at: a.action.at,
        reused: a.restored,
        feature_schema_hash: a.record.feature_names_hash,
        features: a.record.features,
    });
    let summary = write_feedback(&args.out, at, store.config().restore_window_secs, rows)?;
    tracing::info!(
        rows = summary.rows,
        seconds = started.elapsed().as_secs_f64(),
        out = %args.out.display(),
        "feedback exported"
    );
    match args.format {
        Format::Json => emit_json(&serde_json::json!({
            "out": args.out.display().to_string(),
            "at": at,
            "rows": summary.rows,
            "reused": summary.reused,
            "skipped_other_schema": summary.skipped_schema,
            "feature_schema": FeatureSchema::current(),
        })),
        Format::Table => {
            let mut text = format!(
                "{} rows ({} reused) written to {}, labels as of {}\n",
                summary.rows,
                summary.reused,
                args.out.display(),
                format_rfc3339(at)
            );
            if summary.skipped_schema > 0 {
                text.push_str(&format!(
                    "{} acted-on verdicts left out: their features are of another feature schema\n",
                    summary.skipped_schema
                ));
            }
            emit(&text)
        }
    }
}

/// Records every verdict of `reprieve score --data-dir` in the audit trail (source `batch`).
#[derive(Debug)]
pub struct AuditSink<'a> {
    store: &'a Store,
    schema_hash: String,
    pub accepted: u64,
    pub duplicates: u64,
}

impl<'a> AuditSink<'a> {
    pub fn new(store: &'a Store) -> Self {
        Self {
            store,
            schema_hash: FeatureSchema::current().hash,
            accepted: 0,
            duplicates: 0,
        }
    }

    /// Logs what the run added to the audit trail.
    pub fn log_summary(&self) {
        tracing::info!(
            accepted = self.accepted,
            duplicates = self.duplicates,
            data_dir = %self.store.dir().display(),
            "verdicts audited"
        );
    }
}

impl VerdictSink for AuditSink<'_> {
    fn record(&mut self, scored: &[Scored]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for chunk in scored.chunks(RECORD_CHUNK) {
            let records: Vec<AuditRecord> = chunk
                .iter()
                .map(|s| AuditRecord {
                    verdict: s.verdict.clone(),
                    features: s.features.values().to_vec(),
                    feature_names_hash: self.schema_hash.clone(),
                    source: "batch".to_string(),
                })
                .collect();
            let ack = self.store.record_verdicts(&records)?;
            self.accepted += u64::from(ack.accepted);
            self.duplicates += u64::from(ack.duplicates);
        }
        Ok(())
    }
}
