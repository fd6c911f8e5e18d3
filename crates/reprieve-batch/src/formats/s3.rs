//! S3 server access logs.
//!
//! `owner bucket [06/Feb/2019:00:00:38 +0000] ip requester request_id operation key "request_uri" status
//! error_code bytes_sent object_size total_time turnaround_time "referer" "user_agent" version_id ...`
//!
//! What counts as a read: a line whose operation is in the configured list (default [`DEFAULT_OPERATIONS`]:
//! `REST.GET.OBJECT`, `REST.COPY.OBJECT_GET`, `REST.HEAD.OBJECT`) with a 2xx or 304 status and a key. Other
//! operations, failed requests (4xx/5xx) and lines with key `-` are valid but not counted (`Ok(None)`). The tenant
//! is the bucket, the key is the URL-decoded key field, the size is `object_size`. Trailing fields after the user
//! agent (version id, host id, signature version, ...) are tolerated and ignored.
//!
//! Performance: the line is split by a borrowing field splitter ([`LogFields`]) with no regex and no per-field
//! allocation; the time goes through an allocation-free fixed-width parser. The only allocations per counted
//! event are the key, the bucket and the operation Strings that [`AccessEvent`] owns; lines that are not counted
//! allocate nothing.

use reprieve_core::AccessEvent;

use super::fields::{LogFields, clf_time, is_read_status, parse_status, parse_u64, percent_decode};
use crate::error::LineError;

/// The operations counted as reads unless configured otherwise.
pub const DEFAULT_OPERATIONS: [&str; 3] = ["REST.GET.OBJECT", "REST.COPY.OBJECT_GET", "REST.HEAD.OBJECT"];

/// Parses one S3 server access log line. `operations`: the operations counted (empty: [`DEFAULT_OPERATIONS`]).
pub fn parse_line<S: AsRef<str>>(line: &str, operations: &[S]) -> Result<Option<AccessEvent>, LineError> {
    let mut f = LogFields::new(line.trim_end_matches(['\r', '\n']));
    let mut next = |name: &'static str| f.next().ok_or_else(|| LineError::new(format!("missing field {name}")));
    let _owner = next("bucket_owner")?;
    let bucket = next("bucket")?;
    let time = next("time")?;
    let _ip = next("remote_ip")?;
    let _requester = next("requester")?;
    let _request_id = next("request_id")?;
    let operation = next("operation")?;
    let key = next("key")?;
    let _uri = next("request_uri")?;
    let status_text = next("http_status")?;
    let _error_code = next("error_code")?;
    let _bytes_sent = next("bytes_sent")?;
    let object_size = next("object_size")?;
    if bucket.is_empty() || operation.is_empty() || !operation.contains('.') {
        return Err(LineError::new(format!("bad operation {operation:?}")));
    }
    let ts = clf_time(time).ok_or_else(|| LineError::new(format!("bad time {time:?}")))?;
    let status = parse_status(status_text).ok_or_else(|| LineError::new(format!("bad http_status {status_text:?}")))?;
    let counted = if operations.is_empty() {
        DEFAULT_OPERATIONS.contains(&operation)
    } else {
        operations.iter().any(|o| o.as_ref() == operation)
    };
    if !counted || !is_read_status(status) || key == "-" || key.is_empty() {
        return Ok(None);
    }
    Ok(Some(AccessEvent {
        ts,
        key: percent_decode(key),
        tenant: bucket.to_owned(),
        size: parse_u64(object_size),
        op: Some(operation.to_owned()),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LINE: &str = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.OBJECT photos/2019/08/puppy%20dog.jpg "GET /awsexamplebucket1/photos/2019/08/puppy%20dog.jpg HTTP/1.1" 200 - 113 2662992 7 6 "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 - -"#;

    #[test]
    fn parses_get() {
        let e = parse_line::<&str>(LINE, &[]).unwrap().unwrap();
        assert_eq!(e.tenant, "awsexamplebucket1");
        assert_eq!(e.key, "photos/2019/08/puppy dog.jpg");
        assert_eq!(e.size, Some(2_662_992));
        assert_eq!(e.ts, 1_549_411_238);
        assert_eq!(e.op.as_deref(), Some("REST.GET.OBJECT"));
    }

    #[test]
    fn filters_and_rejects() {
        let put = LINE.replace("REST.GET.OBJECT", "REST.PUT.OBJECT");
        assert_eq!(parse_line::<&str>(&put, &[]), Ok(None));
        assert!(parse_line(&put, &["REST.PUT.OBJECT"]).unwrap().is_some());
        let denied = LINE.replace("\" 200 -", "\" 403 AccessDenied");
        assert_eq!(parse_line::<&str>(&denied, &[]), Ok(None));
        let nokey = LINE.replace("photos/2019/08/puppy%20dog.jpg \"", "- \"");
        assert_eq!(parse_line::<&str>(&nokey, &[]), Ok(None));
        assert!(parse_line::<&str>("owner bucket [06/Feb/2019:00:00:38 +0000] ip", &[]).is_err());
        assert!(parse_line::<&str>(&LINE.replace("06/Feb", "xx/Feb"), &[]).is_err());
        assert!(parse_line::<&str>(&LINE.replace("\" 200 -", "\" OK -"), &[]).is_err());
        // no trailing fields at all after object_size is still fine
        let short: String = LINE.split(" 7 6 ").next().unwrap().to_owned();
        assert!(parse_line::<&str>(&short, &[]).unwrap().is_some());
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,300}") {
            let _ = parse_line::<&str>(&line, &[]);
        }

        #[test]
        fn never_panics_fieldlike(parts in proptest::collection::vec("[\"\\[\\]a-zA-Z0-9 .%-]{0,12}", 0..20)) {
            let _ = parse_line::<&str>(&parts.join(" "), &[]);
        }

        #[test]
        fn round_trips(
            ts in 0i64..4_000_000_000,
            key in "[a-zA-Z0-9 _.%?#&+=é/-]{1,40}",
            size in 0u64..u64::MAX,
            op in prop::sample::select(DEFAULT_OPERATIONS.to_vec()),
            bucket in "[a-z0-9][a-z0-9.-]{2,20}",
        ) {
            let (y, m, d) = reprieve_core::time::civil_from_days(ts.div_euclid(86_400));
            let secs = ts.rem_euclid(86_400);
            let month = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"][m as usize - 1];
            let time = format!("{d:02}/{month}/{y}:{:02}:{:02}:{:02} +0000", secs / 3600, secs % 3600 / 60, secs % 60);
            let enc = percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC).to_string();
            let line = format!(
                "owner {bucket} [{time}] 192.0.2.3 arn:aws:iam::1:user/x REQID {op} {enc} \"GET /{bucket}/{enc} HTTP/1.1\" 200 - 10 {size} 7 6 \"-\" \"aws-sdk (linux; x)\" - hostid SigV4"
            );
            let e = parse_line::<&str>(&line, &[]).unwrap().unwrap();
            prop_assert_eq!(e.ts, ts);
            prop_assert_eq!(e.key, key);
            prop_assert_eq!(e.tenant, bucket);
            prop_assert_eq!(e.size, Some(size));
            prop_assert_eq!(e.op.as_deref(), Some(op));
        }
    }
}
