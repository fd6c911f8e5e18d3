//! Reprieve batch scoring: readers that normalise real log files and inventories into the core domain types.
//!
//! - [`formats`]: access logs (Apache/nginx CLF and combined, S3 server access logs, CloudFront standard logs,
//!   canonical events CSV/Parquet) into [`reprieve_core::AccessEvent`]s, streaming.
//! - [`inventory`]: object inventories (generic CSV/Parquet, S3 Inventory manifests) into [`inventory::InventoryRow`]s.
//! - [`score`]: batch scoring of a whole inventory from files: [`run_score`] writes the scores file and the
//!   report.
//! - [`error`]: [`ReadError`] and [`LineError`].

pub mod error;
pub mod formats;
pub mod inventory;
pub mod score;

pub use error::{LineError, ReadError};
pub use formats::{LogFormat, ReadOptions, ReadReport, SourceFormat, detect_format, for_each_event, read_events};
pub use inventory::{InventoryOptions, InventoryRow, for_each_inventory_row, read_inventory};
pub use score::{BatchError, PriceTable, ScoreJob, ScoreSummary, parse_shard, prepare, run_score};
