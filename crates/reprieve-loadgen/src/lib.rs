//! A gRPC load generator for `reprieve serve` and any other server of `proto/reprieve/v1/reprieve.proto` (the
//! benches drive a Python grpcio peer with it too).
//!
//! - [`records`]: realistic object records from a seed (the same seed, the same requests for every server).
//! - [`codec`]: requests are encoded once and sent as bytes, so the client spends little CPU per call.
//! - [`run`]: open loop at a fixed rate (latency from the intended send time: no coordinated omission) or closed
//!   loop at a given concurrency; unary `Score` or `ScoreStream`; HDR latency percentiles.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use reprieve_loadgen::run::{Config, Mode, run};
//! let report = run(Config {
//!     target: "http://127.0.0.1:50051".into(),
//!     mode: Mode::Unary,
//!     duration: Duration::from_secs(10),
//!     warmup: Duration::from_secs(1),
//!     rate: None,
//!     objects_per_request: 100,
//!     concurrency: 16,
//!     connections: 4,
//!     seed: 1,
//!     at: reprieve_loadgen::records::DEFAULT_AT,
//!     distinct_requests: 64,
//!     timeout: Duration::from_secs(10),
//!     check_every: 100,
//!     stream_window: 4,
//!     fresh_verdicts: false,
//! })
//! .await?;
//! assert_eq!(report.requests_failed, 0);
//! # Ok(()) }
//! ```

pub mod codec;
pub mod records;
pub mod run;
