//! The subcommands: flags (clap) mapped onto library calls.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use reprieve_batch::formats::{LogFormat, ReadOptions, ReadReport};
use reprieve_batch::inventory::InventoryOptions;
use reprieve_core::time::{format_duration, format_rfc3339, parse_duration, parse_time};
use reprieve_model::artifact::Targets;
use reprieve_model::train::{ModelKind, TrainConfig};
use reprieve_server::{AppState, ServerConfig};
use reprieve_synth::{OutputFormat, SynthConfig};

use crate::bundled::load_model;
use crate::feedback::{AuditSink, FeedbackArgs, open_store};

/// Reprieve predicts, per stored object, the probability that it will be read again, and turns it into
/// conservative verdicts (retain / review / archive / delete-candidate) with a bounded false-delete rate.
#[derive(Debug, Parser)]
#[command(name = "reprieve", version, about, long_about = None)]
pub struct Cli {
    /// Log as JSON lines (to stderr) instead of text.
    #[arg(long, global = true)]
    pub json_logs: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve scores and verdicts over gRPC (ReuseScorer, Models, health, reflection).
    Serve(ServeArgs),
    /// Score a whole inventory from its files: inventory + access logs -> scores file and report.
    Score(ScoreArgs),
    /// Train a model from request traces and write a versioned artifact.
    Train(TrainArgs),
    /// Replay a trace at rolling cuts and compare the model with recency rules at the same false-delete target.
    Evaluate(EvaluateArgs),
    /// Generate a seeded synthetic inventory and access log in the canonical formats.
    Synth(SynthArgs),
    /// The feedback store: audit trail, actions and restores, realized precision, breakers, training export.
    Feedback(FeedbackArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see README); flags and REPRIEVE_* environment variables override it.
    #[arg(long, env = "REPRIEVE_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Model artifact to serve [default: the bundled model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Most objects per Score request or ScoreStream chunk [default: 10000].
    #[arg(long)]
    max_objects_per_request: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics [default: off].
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Feedback and audit store directory, created if missing [default: ./reprieve-data; env REPRIEVE_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve gRPC over TLS with this certificate chain (PEM); needs --tls-key [env REPRIEVE_TLS_CERT].
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM) [env REPRIEVE_TLS_KEY].
    #[arg(long, value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Require client certificates issued by these CAs (PEM): mutual TLS [env REPRIEVE_TLS_CLIENT_CA].
    #[arg(long, value_name = "PEM")]
    tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("image_sources").args(["registry_events", "ecr_images"]).multiple(true))]
pub struct ScoreArgs {
    /// Inventory: generic CSV/Parquet (`key, size, created, ...`) or an S3 Inventory manifest.json.
    #[arg(long, required_unless_present_any = ["registry_events", "ecr_images"])]
    inventory: Option<PathBuf>,
    /// Container images: registry notification event files (distribution/OCI registry webhook JSON, one envelope
    /// per line or one document; gzip ok). Scores one verdict per manifest digest instead of an inventory.
    #[arg(long, num_args = 1.., conflicts_with_all = ["inventory", "logs", "shard"])]
    registry_events: Vec<PathBuf>,
    /// Container images: `aws ecr describe-images` JSON output files (an inventory with the last recorded pull).
    #[arg(long, num_args = 1.., conflicts_with_all = ["inventory", "logs", "shard"])]
    ecr_images: Vec<PathBuf>,
    /// Container images: Kubernetes objects (YAML/JSON files, `kubectl get ... -o json`); every image they name is
    /// a live reference (RETAIN).
    #[arg(long = "k8s", num_args = 1.., requires = "image_sources")]
    k8s: Vec<PathBuf>,
    /// Container images: a workload naming a tag also holds the digests the tag left this recently.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    tag_grace: i64,
    /// Container images: tenant of every image record (e.g. the registry host or account) [default: none].
    #[arg(long, default_value = "")]
    tenant: String,
    /// Access logs (S3 access log, CloudFront, Apache/nginx, canonical events CSV/Parquet; gzip ok).
    #[arg(long, num_args = 1..)]
    logs: Vec<PathBuf>,
    /// Format of the log files.
    #[arg(long, default_value = "auto", value_parser = parse_log_format)]
    format: LogFormat,
    /// Scoring time (Unix seconds or RFC 3339); reads at or after it are ignored.
    #[arg(long, value_parser = parse_time)]
    at: i64,
    /// Scores file: .parquet or .csv.
    #[arg(long)]
    out: PathBuf,
    /// Markdown report (a .json with the same numbers is written beside it).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Score only shard i of N (by key hash), e.g. 0/8; the shards' outputs concatenate to the whole.
    #[arg(long, value_parser = reprieve_batch::parse_shard)]
    shard: Option<(u32, u32)>,
    /// Model artifact [default: the bundled model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// When the logs start being complete (Unix seconds or RFC 3339) [default: the earliest read in them].
    #[arg(long, value_parser = parse_time)]
    history_since: Option<i64>,
    /// Storage prices (TOML, USD per GB-month per storage class) for the cost figures [default: S3 list prices].
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Objects younger than this are retained.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    min_age: i64,
    /// Less history coverage than this caps a verdict at REVIEW.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    min_history: i64,
    /// Let objects without a known owner be archived or deleted (by default they are at most REVIEW).
    #[arg(long)]
    allow_unknown_owner: bool,
    /// Fail on the first malformed log line or inventory row instead of counting it.
    #[arg(long)]
    strict: bool,
    /// Also record every verdict (with its features) in the audit trail of the feedback store in this directory
    /// (created if missing), so that actions on these verdicts are attributed to their class and model version.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    trace: TraceArgs,
    /// First cut (Unix seconds or RFC 3339) [default: one step after the log starts].
    #[arg(long, value_parser = parse_time)]
    from: Option<i64>,
    /// Last cut [default: the last whose label window closes inside the log].
    #[arg(long, value_parser = parse_time)]
    to: Option<i64>,
    /// False-delete target of delete candidates.
    #[arg(long, default_value_t = 0.01)]
    target_false_delete: f64,
    /// How many of the latest closed cuts calibrate before each test cut.
    #[arg(long, default_value_t = 3)]
    calibration_cuts: usize,
    /// Adaptive conformal step: once a test cut's labels are known, the next models' delete target moves by
    /// gamma * (target - realized rate), between target/10 and the target; 0 keeps it fixed.
    #[arg(long, default_value_t = reprieve_eval::evaluate::DEFAULT_ADAPTIVE_GAMMA)]
    adaptive_gamma: f64,
    /// Scorer to fit: logistic (regression on standardized features) or tree (a decision tree).
    #[arg(long, default_value = "logistic", value_parser = parse_model_kind)]
    model_kind: ModelKind,
    /// Directory for report.json, report.md and the SVG plots.
    #[arg(long)]
    out_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    trace: TraceArgs,
    /// Explicit cut times (Unix seconds or RFC 3339), comma-separated; default: every --step.
    #[arg(long, value_delimiter = ',', value_parser = parse_time)]
    cuts: Vec<i64>,
    /// How many of the latest cuts calibrate and choose thresholds (the bound must hold on each).
    #[arg(long, default_value_t = 3)]
    calibration_cuts: usize,
    /// Scorer to fit: logistic (regression on standardized features) or tree (a decision tree).
    #[arg(long, default_value = "logistic", value_parser = parse_model_kind)]
    model_kind: ModelKind,
    /// False-delete target of DELETE_CANDIDATE.
    #[arg(long, default_value_t = 0.01)]
    target_delete: f64,
    /// False-delete target of ARCHIVE.
    #[arg(long, default_value_t = 0.05)]
    target_archive: f64,
    /// Feedback export (`reprieve feedback export`) whose rows train too, labelled restored = reused; repeatable.
    /// Refused if its feature schema is not this build's.
    #[arg(long, value_name = "PATH.parquet")]
    feedback: Vec<PathBuf>,
    /// Model name; the version adds a hash of the parameters.
    #[arg(long, default_value = "reprieve")]
    name: String,
    /// Where to write the artifact (JSON).
    #[arg(long)]
    out: PathBuf,
}

/// A request trace to cut: event files (or a registry's notification events), an optional inventory, the horizon
/// and the cut spacing.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Access log or canonical event files (CLF/combined, S3 access log, CloudFront, events CSV/Parquet; gzip ok).
    #[arg(long, required_unless_present = "registry_events", num_args = 1..)]
    events: Vec<PathBuf>,
    /// Container images: registry notification event files (distribution/OCI registry webhook JSON, one envelope
    /// per line or one document; gzip ok) instead of --events: the objects are the images (repository@digest),
    /// pulls are their reads (by tag: the digest the tag pointed to then), features as `reprieve score` computes
    /// them from the events before each cut.
    #[arg(long, num_args = 1.., conflicts_with_all = ["events", "inventory"])]
    registry_events: Vec<PathBuf>,
    /// With --registry-events: `aws ecr describe-images` JSON files for the images' sizes (events carry none); only
    /// the sizes are used (the listing's tags and last pulls are of today, not of the cuts).
    #[arg(long, num_args = 1.., requires = "registry_events")]
    ecr_images: Vec<PathBuf>,
    /// Format of the event files.
    #[arg(long, default_value = "auto", value_parser = parse_log_format)]
    format: LogFormat,
    /// Inventory (generic CSV/Parquet or S3 Inventory manifest.json): adds never-read objects, sizes, metadata and
    /// cohort labels; without one, the objects are those the logs name.
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// Reuse horizon H: the label at a cut T is "read again in [T, T+H)".
    #[arg(long, default_value = "14d", value_parser = parse_duration)]
    horizon: i64,
    /// Spacing of the cuts.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    step: i64,
    /// Fail on the first malformed log line or inventory row instead of counting it.
    #[arg(long)]
    strict: bool,
}

/// A loaded trace of either kind.
enum Loaded {
    Files(reprieve_eval::LoadedTrace),
    Images(reprieve_eval::LoadedImageTrace),
}

impl Loaded {
    fn replay(&self) -> &dyn reprieve_eval::Replay {
        match self {
            Loaded::Files(l) => &l.trace,
            Loaded::Images(l) => &l.trace,
        }
    }
}

impl TraceArgs {
    /// The input files, for the artifact's `source`.
    fn sources(&self) -> String {
        let files = if self.registry_events.is_empty() {
            &self.events
        } else {
            &self.registry_events
        };
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads the files into a trace (of files or of images), logging how each read.
    fn load(&self) -> anyhow::Result<Loaded> {
        if !self.registry_events.is_empty() {
            let loaded = reprieve_eval::load_image_trace(&self.registry_events, &self.ecr_images, "", self.strict)?;
            log_reports(&loaded.reports);
            let trace = &loaded.trace;
            tracing::info!(
                images = trace.images(),
                pulls = trace.pulls(),
                unresolved_pulls = trace.unresolved_pulls,
                events = trace.events(),
                sized = loaded.sized,
                from = %format_rfc3339(trace.log_start),
                to = %format_rfc3339(trace.log_end),
                "registry trace loaded"
            );
            return Ok(Loaded::Images(loaded));
        }
        self.load_files().map(Loaded::Files)
    }

    fn load_files(&self) -> anyhow::Result<reprieve_eval::LoadedTrace> {
        let options = ReadOptions {
            format: self.format,
            strict: self.strict,
            ..ReadOptions::default()
        };
        let inventory_options = InventoryOptions {
            strict: self.strict,
            ..InventoryOptions::default()
        };
        let loaded = reprieve_eval::load_trace(&self.events, &options, self.inventory.as_ref(), &inventory_options)?;
        log_reports(&loaded.reports);
        let trace = &loaded.trace;
        tracing::info!(
            objects = trace.objects.len(),
            reads = trace.events.len(),
            from = %format_rfc3339(trace.log_start),
            to = %format_rfc3339(trace.log_end),
            "trace loaded"
        );
        Ok(loaded)
    }
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Directory to write inventory, events and synth.json into.
    #[arg(long)]
    out_dir: PathBuf,
    /// Number of objects.
    #[arg(long)]
    objects: Option<u64>,
    /// Span of the access log in days.
    #[arg(long)]
    days: Option<u32>,
    /// Start of the access log (Unix seconds or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    start: Option<i64>,
    #[arg(long)]
    seed: Option<u64>,
    /// csv or parquet.
    #[arg(long)]
    format: Option<OutputFormat>,
    /// Every other knob (see `reprieve-synth` docs) from a TOML file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn parse_model_kind(text: &str) -> Result<ModelKind, String> {
    match text {
        "logistic" => Ok(ModelKind::Logistic),
        "tree" => Ok(ModelKind::Tree),
        _ => Err(format!("unknown model kind {text:?}; expected logistic or tree")),
    }
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    LogFormat::from_name(text)
        .ok_or_else(|| format!("unknown format {text:?}; expected auto, clf, s3, cloudfront, csv or parquet"))
}

/// Sets up `tracing` on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: piped logs stay plain text for whoever parses them.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Train(args) => train(args),
        Command::Synth(args) => synth(args),
        Command::Score(args) => score(args),
        Command::Evaluate(args) => evaluate(args),
        Command::Feedback(args) => crate::feedback::run(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::default(),
    };
    config = config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(model) = args.model {
        config.model_path = Some(model);
    }
    if let Some(max) = args.max_objects_per_request {
        config.max_objects_per_request = max;
    }
    if let Some(addr) = args.metrics_listen {
        config.metrics_listen = Some(addr);
    }
    if let Some(dir) = args.data_dir {
        config.store.data_dir = dir;
    }
    if let Some(cert) = args.tls_cert {
        config.tls.cert = Some(cert);
    }
    if let Some(key) = args.tls_key {
        config.tls.key = Some(key);
    }
    if let Some(ca) = args.tls_client_ca {
        config.tls.client_ca = Some(ca);
    }
    // Before the model and the store: TLS settings that cannot be honoured stop the start with one line (never a
    // plaintext listener). `serve` checks them again when it builds the listener.
    reprieve_server::tls::load(&config.tls)?;
    let (model, source) = load_model(config.model_path.as_deref()).context("cannot load the model")?;
    tracing::info!(version = model.version(), %source, "model loaded");
    // Before anything listens: a locked, corrupt or foreign data directory stops the start with its reason.
    let state = Arc::new(AppState::open(config)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        state.install(model, source);
        let listener = reprieve_server::bind(&state.config).await?;
        // Metrics stay up while in-flight calls drain; the runtime ends the listener when `serve` returns.
        if let Some(metrics) = reprieve_server::bind_metrics(&state.config).await? {
            tokio::spawn(reprieve_server::serve_metrics(
                metrics,
                state.clone(),
                std::future::pending(),
            ));
        }
        // SIGHUP reloads the configured artifact; a refused one leaves the current model serving.
        #[cfg(unix)]
        tokio::spawn(reprieve_server::reload_on_sighup(state.clone()).context("cannot handle SIGHUP")?);
        // On SIGTERM/Ctrl-C the server stops accepting and finishes in-flight calls, for at most the grace period.
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown_signal().await;
            let _ = stopping_tx.send(());
        };
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = reprieve_server::serve(listener, state, signal) => result?,
            () = deadline => tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight calls did not finish in time; exiting"),
        }
        Ok(())
    })
}

/// How long a shutdown waits for in-flight calls and open streams.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight calls");
}

fn log_reports(reports: &[ReadReport]) {
    for r in reports {
        tracing::info!(
            path = %r.path.display(),
            format = ?r.format_detected,
            lines = r.lines,
            events = r.events,
            ignored = r.ignored,
            malformed = r.malformed,
            "read"
        );
        if r.malformed > 0 {
            let first: Vec<String> = r
                .first_malformed
                .iter()
                .map(|(line, why)| format!("line {line}: {why}"))
                .collect();
            tracing::warn!(path = %r.path.display(), malformed = r.malformed, first = %first.join("; "), "malformed lines skipped");
        }
    }
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    for (name, t) in [
        ("--target-delete", args.target_delete),
        ("--target-archive", args.target_archive),
    ] {
        if !(t > 0.0 && t < 1.0) {
            bail!("{name} must be a rate strictly between 0 and 1 (got {t})");
        }
    }
    // Feedback first: a schema mismatch is refused before the (longer) trace load.
    let (extra, feedback_files) = reprieve_eval::feedback::read_feedback_files(&args.feedback)?;
    for f in &feedback_files {
        tracing::info!(path = %f.path.display(), rows = f.rows, reused = f.reused, "feedback loaded");
    }
    let loaded = args.trace.load()?;
    let trace = loaded.replay();
    let mut source = args.trace.sources();
    if !feedback_files.is_empty() {
        let files: Vec<String> = feedback_files
            .iter()
            .map(|f| format!("{} ({} rows, {} reused)", f.path.display(), f.rows, f.reused))
            .collect();
        source = format!(
            "{source}; feedback: {} rows from {}",
            extra.features.len(),
            files.join(", ")
        );
    }
    let plan = reprieve_eval::TrainPlan {
        horizon_secs: args.trace.horizon,
        step_secs: args.trace.step,
        cuts: args.cuts,
        calibration_cuts: args.calibration_cuts,
        config: TrainConfig {
            name: args.name,
            targets: Targets {
                delete: args.target_delete,
                archive: args.target_archive,
            },
            kind: args.model_kind,
            ..TrainConfig::default()
        },
        source,
        created_at: now_unix(),
    };
    let started = std::time::Instant::now();
    let (artifact, cuts) = reprieve_eval::train_on_trace(trace, &plan, &extra)?;
    let out = if args.out.extension().is_some() {
        args.out
    } else {
        args.out.with_extension("json")
    };
    artifact.save(&out)?;
    let t = artifact.thresholds;
    tracing::info!(
        version = %artifact.version,
        cuts = cuts.len(),
        horizon = %format_duration(artifact.horizon_secs),
        train_rows = artifact.training.train_rows,
        feedback_rows = extra.features.len(),
        calibration_rows = artifact.training.calibration_rows,
        delete_max = t.delete_max,
        archive_max = t.archive_max,
        retain_min = t.retain_min,
        seconds = started.elapsed().as_secs_f64(),
        out = %out.display(),
        "model written"
    );
    Ok(())
}

fn score(args: ScoreArgs) -> anyhow::Result<()> {
    if !args.registry_events.is_empty() || !args.ecr_images.is_empty() {
        return score_images(args);
    }
    let Some(inventory) = args.inventory.clone() else {
        bail!("--inventory: give an inventory (or container-image inputs: --registry-events, --ecr-images)");
    };
    if args.logs.is_empty() {
        bail!("--logs: give at least one access log (an inventory alone has no history to judge by)");
    }
    let engine = score_engine(&args)?;
    // Opened before the (longer) scoring so that a store held by `reprieve serve` fails fast.
    let store = args.data_dir.as_deref().map(|dir| open_store(dir, true)).transpose()?;
    let prices = read_prices(args.prices.as_deref())?;
    let mut job = reprieve_batch::ScoreJob::new(inventory, args.logs, args.at, args.out);
    job.report = args.report;
    job.shard = args.shard;
    job.history_complete_since = args.history_since;
    job.read_options = ReadOptions {
        format: args.format,
        strict: args.strict,
        ..ReadOptions::default()
    };
    job.inventory_options = InventoryOptions {
        strict: args.strict,
        ..InventoryOptions::default()
    };
    job.prices = prices;
    job.progress = true;
    let started = std::time::Instant::now();
    let mut sink = store.as_ref().map(AuditSink::new);
    let summary = reprieve_batch::score::run_score_into(
        &job,
        &engine,
        sink.as_mut().map(|s| s as &mut dyn reprieve_batch::score::VerdictSink),
    )?;
    if let Some(sink) = &sink {
        sink.log_summary();
    }
    log_reports(std::slice::from_ref(&summary.inventory_report));
    log_reports(&summary.log_reports);
    for class in &summary.by_class {
        tracing::info!(
            class = class.class.as_str(),
            objects = class.objects,
            bytes = class.bytes,
            "verdicts"
        );
    }
    tracing::info!(
        objects = summary.objects_scored,
        reads = summary.reads_counted,
        unknown_key_reads = summary.unknown_reads.reads,
        seconds = started.elapsed().as_secs_f64(),
        out = %job.out.display(),
        "inventory scored"
    );
    Ok(())
}

fn score_engine(args: &ScoreArgs) -> anyhow::Result<reprieve_model::Engine> {
    let (model, source) = load_model(args.model.as_deref()).context("cannot load the model")?;
    tracing::info!(version = model.version(), %source, "model loaded");
    let policy = reprieve_core::PolicyConfig {
        min_age_secs: args.min_age,
        min_history_secs: args.min_history,
        require_owner: !args.allow_unknown_owner,
    };
    Ok(reprieve_model::Engine::new(Arc::new(model), policy))
}

fn read_prices(path: Option<&std::path::Path>) -> anyhow::Result<reprieve_batch::PriceTable> {
    let Some(path) = path else {
        return Ok(reprieve_batch::PriceTable::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("--prices: cannot read {}", path.display()))?;
    reprieve_batch::PriceTable::from_toml(&text).map_err(|e| anyhow::anyhow!("--prices: {}: {e}", path.display()))
}

/// `reprieve score` over container images: registry events and/or ECR listings, Kubernetes references.
fn score_images(args: ScoreArgs) -> anyhow::Result<()> {
    let engine = score_engine(&args)?;
    let store = args.data_dir.as_deref().map(|dir| open_store(dir, true)).transpose()?;
    let mut job = reprieve_images::ImageJob::new(args.at, args.out.clone());
    job.registry_events = args.registry_events.clone();
    job.ecr_images = args.ecr_images.clone();
    job.kubernetes = args.k8s.clone();
    job.report = args.report.clone();
    job.tenant = args.tenant.clone();
    job.history_complete_since = args.history_since;
    job.tag_grace_secs = args.tag_grace;
    job.strict = args.strict;
    job.prices = read_prices(args.prices.as_deref())?;
    job.progress = true;
    let started = std::time::Instant::now();
    let mut sink = store.as_ref().map(AuditSink::new);
    let result = reprieve_images::run_image_score(
        &job,
        &engine,
        sink.as_mut().map(|s| s as &mut dyn reprieve_batch::score::VerdictSink),
    )?;
    if let Some(sink) = &sink {
        sink.log_summary();
    }
    let summary = &result.summary;
    log_reports(&summary.log_reports);
    for class in &summary.by_class {
        tracing::info!(
            class = class.class.as_str(),
            images = class.objects,
            bytes = class.bytes,
            "verdicts"
        );
    }
    let images = &result.images;
    for u in &images.unresolved_references {
        tracing::warn!(object = %u.object, container = %u.container, image = %u.image, why = %u.why, "reference names no inventory image");
    }
    tracing::info!(
        images = images.images,
        held_by_reference = images.held_by_reference.len(),
        let_go = images.let_go_total,
        pulls = summary.reads_counted,
        seconds = started.elapsed().as_secs_f64(),
        out = %job.out.display(),
        "images scored"
    );
    Ok(())
}

fn evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    if !(args.target_false_delete > 0.0 && args.target_false_delete < 1.0) {
        bail!(
            "--target-false-delete must be a rate strictly between 0 and 1 (got {})",
            args.target_false_delete
        );
    }
    if !(0.0..=1.0).contains(&args.adaptive_gamma) {
        bail!("--adaptive-gamma must be between 0 and 1 (got {})", args.adaptive_gamma);
    }
    let loaded = args.trace.load()?;
    let config = reprieve_eval::EvalConfig {
        horizon_secs: args.trace.horizon,
        step_secs: args.trace.step,
        from: args.from,
        to: args.to,
        target: args.target_false_delete,
        calibration_cuts: args.calibration_cuts,
        train: TrainConfig {
            kind: args.model_kind,
            ..TrainConfig::default()
        },
        adaptive_gamma: args.adaptive_gamma,
    };
    let started = std::time::Instant::now();
    let report = reprieve_eval::evaluate(loaded.replay(), &config)?;
    let files = reprieve_eval::write_report(&report, &args.out_dir)?;
    for (scope, pooled) in [("all", &report.pooled), ("recent", &report.pooled_recent)] {
        for (method, f) in pooled.iter() {
            tracing::info!(
                scope,
                method = method.as_str(),
                flagged = f.flagged,
                false_delete_rate = f.false_delete_rate,
                upper_95 = f.false_delete_upper_95,
                unused_bytes_found = f.unused_bytes_found,
                "pooled"
            );
        }
    }
    tracing::info!(
        cuts = report.cuts.len(),
        skipped = report.skipped_cuts.len(),
        gap_closed = ?report.gap_closed,
        gap_closed_recent = ?report.gap_closed_recent,
        seconds = started.elapsed().as_secs_f64(),
        out = %files.first().map(|p| p.display().to_string()).unwrap_or_default(),
        "evaluation written"
    );
    Ok(())
}

fn synth(args: SynthArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<SynthConfig>(&text).with_context(|| format!("invalid synth config {}", path.display()))?
        }
        None => SynthConfig::default(),
    };
    if let Some(v) = args.objects {
        config.objects = v;
    }
    if let Some(v) = args.days {
        config.days = v;
    }
    if let Some(v) = args.start {
        config.start = v;
    }
    if let Some(v) = args.seed {
        config.seed = v;
    }
    if let Some(v) = args.format {
        config.format = v;
    }
    let started = std::time::Instant::now();
    let summary = reprieve_synth::generate(&config, &args.out_dir)?;
    tracing::info!(
        objects = summary.objects,
        events = summary.events,
        seconds = started.elapsed().as_secs_f64(),
        out_dir = %args.out_dir.display(),
        "synthetic trace written"
    );
    Ok(())
}
