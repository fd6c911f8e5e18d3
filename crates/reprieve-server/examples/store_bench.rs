//! A rough benchmark of the feedback store behind the gRPC server (not a test; run by hand after a build):
//!
//! ```sh
//! cargo build --workspace --all-targets
//! B=$CARGO_TARGET_DIR/debug/examples/store_bench
//! $B ingest [clients=8] [batch=500] [seconds=10]      # RecordActions + RecordRestores events/s, durable
//! $B score fsync|buffered|none [clients=16] [seconds=10]  # unary Score, 1 object per call: calls/s, p50/p99
//! $B stream fsync|buffered|none [chunk=1000] [seconds=10] # ScoreStream objects/s
//! ```
//!
//! The server runs in this process on 127.0.0.1:0 with a fresh store in a temporary directory (`none`: no store,
//! so no audit), so client and server share the machine's cores: the figures are a floor.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reprieve_model::Model;
use reprieve_proto::v1::feedback_client::FeedbackClient;
use reprieve_proto::v1::reuse_scorer_client::ReuseScorerClient;
use reprieve_proto::v1::{
    self, Action, ActionKind, RecordActionsRequest, RecordRestoresRequest, Restore, ScoreRequest, ScoreStreamRequest,
};
use reprieve_server::{AppState, AuditDurability, ServerConfig};
use tonic::transport::Channel;

const DAY: i64 = 86_400;

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Starts a server in this process; `durability` `None`: without a store.
async fn start(durability: Option<AuditDurability>, dir: &std::path::Path) -> (Channel, Arc<AppState>) {
    let mut config = ServerConfig::default();
    config.store.data_dir = dir.to_path_buf();
    config.max_objects_per_request = 100_000;
    let state = match durability {
        Some(d) => {
            config.store.audit_durability = d;
            AppState::open(config).unwrap()
        }
        None => AppState::new(config),
    };
    let state = Arc::new(state);
    let model =
        Model::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default.json")).unwrap();
    state.install(model, "bench".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(reprieve_server::serve(listener, state.clone(), std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, state)
}

fn object(i: u64, at: i64) -> v1::ObjectRecord {
    v1::ObjectRecord {
        key: format!("img/{}/obj-{i}_300x200.png", i % 97),
        tenant: format!("t{}", i % 3),
        size_bytes: Some(40_000),
        created_unix: Some(at - 400 * DAY),
        owner: "web".into(),
        history: Some(v1::AccessHistory {
            access_unix: vec![at - 90 * DAY, at - 40 * DAY],
            summary: None,
            complete_since_unix: Some(at - 200 * DAY),
        }),
        ..Default::default()
    }
}

fn mode(n: usize) -> Option<AuditDurability> {
    match std::env::args().nth(n).as_deref() {
        Some("buffered") => Some(AuditDurability::Buffered),
        Some("none") => None,
        _ => Some(AuditDurability::Fsync),
    }
}

async fn ingest(clients: usize, batch: usize, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (channel, _state) = start(Some(AuditDurability::Fsync), dir.path()).await;
    let events = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let at = now() - DAY;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = FeedbackClient::new(channel.clone());
        let (events, stop) = (events.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for b in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = |i: usize| format!("p{c}/b{b}-{i}.png");
                let actions = (0..batch)
                    .map(|i| Action {
                        event_id: format!("a-{c}-{b}-{i}"),
                        verdict_id: format!("v-{c}-{b}-{i}"),
                        tenant: "bench".into(),
                        key: key(i),
                        kind: ActionKind::SoftDeleted as i32,
                        at_unix: at,
                    })
                    .collect();
                let ack = client
                    .record_actions(RecordActionsRequest { actions })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(ack.accepted as usize, batch);
                let restores = (0..batch / 10)
                    .map(|i| Restore {
                        event_id: format!("r-{c}-{b}-{i}"),
                        tenant: "bench".into(),
                        key: key(i),
                        at_unix: at + 60,
                        requested_unix: None,
                    })
                    .collect::<Vec<_>>();
                let n = restores.len();
                let ack = client
                    .record_restores(RecordRestoresRequest { restores })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(ack.accepted as usize, n);
                events.fetch_add((batch + n) as u64, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = events.load(Ordering::Relaxed);
    println!(
        "ingest: {n} events in {secs:.1} s = {:.0} events/s ({clients} clients, {batch} actions + {} restores per \
         round, each call answered after its fsync)",
        n as f64 / secs,
        batch / 10
    );
}

async fn score(durability: Option<AuditDurability>, clients: usize, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (channel, _state) = start(durability, dir.path()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let at = now() - DAY;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients as u64 {
        let mut client = ReuseScorerClient::new(channel.clone());
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let request = ScoreRequest {
                    objects: vec![object(c * 1_000_000 + i, at)],
                    at_unix: Some(at),
                };
                let t = Instant::now();
                client.score(request).await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "score ({}): {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms ({clients} clients, 1 object per call)",
        durability.map_or("no store", AuditDurability::as_str),
        all.len() as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
}

async fn stream(durability: Option<AuditDurability>, chunk: u64, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (channel, _state) = start(durability, dir.path()).await;
    let at = now() - DAY;
    let chunks = (seconds * 200_000 / chunk).max(4);
    let requests: Vec<ScoreStreamRequest> = (0..chunks)
        .map(|c| ScoreStreamRequest {
            objects: (0..chunk).map(|i| object(c * chunk + i, at)).collect(),
            at_unix: Some(at),
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for r in requests {
            if Instant::now() > deadline || tx.send(r).await.is_err() {
                break;
            }
        }
    });
    let mut client = ReuseScorerClient::new(channel).max_decoding_message_size(256 << 20);
    let mut inbound = client
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut objects = 0;
    while let Some(r) = inbound.message().await.unwrap() {
        objects += r.verdicts.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "stream ({}): {objects} objects in {secs:.1} s = {:.0} objects/s (chunks of {chunk})",
        durability.map_or("no store", AuditDurability::as_str),
        objects as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("ingest") => ingest(arg(2, 8), arg(3, 500), arg(4, 10)).await,
        Some("score") => score(mode(2), arg(3, 16), arg(4, 10)).await,
        Some("stream") => stream(mode(2), arg(3, 1_000), arg(4, 10)).await,
        _ => println!("usage: store_bench ingest|score|stream ... (see the source)"),
    }
}
