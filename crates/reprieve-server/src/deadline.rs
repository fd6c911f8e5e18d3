//! Client deadlines. tonic drops a handler's future when the `grpc-timeout` expires, but scoring a batch is CPU
//! work that does not yield, so the scorer reads the deadline itself and checks it between objects (and bounds
//! its waits for the audit trail by it). [`crate::guard::Guarded`] fixes the deadline when the call arrives.

use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;

use crate::guard::CallDeadline;

/// The call's deadline: the one [`crate::guard::Guarded`] fixed when the call arrived, else the client's
/// `grpc-timeout` counted from now.
pub fn of<T>(request: &tonic::Request<T>) -> Option<Instant> {
    request
        .extensions()
        .get::<CallDeadline>()
        .map(|d| d.0)
        .or_else(|| from_metadata(request.metadata()))
}

/// When the call must be answered by, if the client said (`grpc-timeout`, counted from when the handler starts).
pub fn from_metadata(metadata: &MetadataMap) -> Option<Instant> {
    let timeout = parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)?;
    // An absurd timeout (beyond what `Instant` can hold) is no deadline at all.
    Instant::now().checked_add(timeout)
}

/// `grpc-timeout` per the gRPC over HTTP/2 spec: at most 8 digits and a unit (`H M S m u n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..unit_at)?, value.get(unit_at..)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Whether `deadline` has passed.
pub fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_units() {
        assert_eq!(parse_grpc_timeout("5m"), Some(Duration::from_millis(5)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "5", "5x", "123456789S", "-5m", "5 m", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
