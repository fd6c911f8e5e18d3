//! The canonical access event: one read (or write) of one object, as every log reader normalises it.

use serde::{Deserialize, Serialize};

use crate::time::UnixSeconds;

/// One request against one object. Readers of real log formats (S3 server access logs, CloudFront, Apache/nginx)
/// and of the canonical events CSV/Parquet (`ts,key[,size][,tenant][,op]`) all produce this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    pub ts: UnixSeconds,
    pub key: String,
    /// Tenant or bucket; empty is the default tenant.
    pub tenant: String,
    /// Object size in bytes, when the log says it (bytes sent is not always the object size).
    pub size: Option<u64>,
    /// The operation as the source names it (`REST.GET.OBJECT`, `GET`, `pull`), when known.
    pub op: Option<String>,
}
