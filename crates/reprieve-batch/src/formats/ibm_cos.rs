//! IBM Cloud Object Storage request traces, as published by IBM Research (the "IBM Object Store" traces).
//!
//! `ms_since_start operation object_id [object_size [range_start range_end]]`, space-separated, e.g.
//! `1232488 REST.GET.OBJECT 95d363d3fbdc0b03 1168 0 1167`.
//!
//! What counts as a read: an operation in the configured list (the S3 defaults: `REST.GET.OBJECT`,
//! `REST.COPY.OBJECT_GET`, `REST.HEAD.OBJECT`); `PUT`, `DELETE` and the like are valid but not counted. The traces
//! carry no absolute time: the timestamp is the milliseconds field read as milliseconds after 1970-01-01 (so
//! relative spans, cut spacing and horizons are right, calendar features are not meaningful). The key is the object
//! id; the size is `object_size` when given.

use reprieve_core::AccessEvent;

use super::fields::parse_u64;
use super::s3::DEFAULT_OPERATIONS;
use crate::error::LineError;

/// Parses one trace line. `Ok(None)`: a valid line that is not a counted read.
pub fn parse_line<S: AsRef<str>>(
    line: &str,
    operations: &[S],
    default_tenant: &str,
) -> Result<Option<AccessEvent>, LineError> {
    let mut fields = line.split_ascii_whitespace();
    let (Some(ms), Some(op), Some(key)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(LineError::new(
            "expected `ms operation object_id [size [range_start range_end]]`",
        ));
    };
    let ms = parse_u64(ms).ok_or_else(|| LineError::new(format!("bad millisecond timestamp {ms:?}")))?;
    if !op.starts_with("REST.") {
        return Err(LineError::new(format!("bad operation {op:?}")));
    }
    let size = match fields.next() {
        None => None,
        Some(s) => Some(parse_u64(s).ok_or_else(|| LineError::new(format!("bad object size {s:?}")))?),
    };
    let rest: Vec<&str> = fields.collect();
    if !(rest.is_empty() || (rest.len() == 2 && rest.iter().all(|r| parse_u64(r).is_some()))) {
        return Err(LineError::new(
            "expected a byte range `start end` after the size, or nothing",
        ));
    }
    let counted = if operations.is_empty() {
        DEFAULT_OPERATIONS.contains(&op)
    } else {
        operations.iter().any(|o| o.as_ref() == op)
    };
    if !counted {
        return Ok(None);
    }
    let ts = i64::try_from(ms / 1000).map_err(|_| LineError::new("timestamp out of range"))?;
    Ok(Some(AccessEvent {
        ts,
        key: key.to_string(),
        tenant: default_tenant.to_string(),
        size,
        op: Some(op.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPS: [&str; 0] = [];

    #[test]
    fn reads_the_sample_shapes() {
        let e = parse_line("1232488 REST.GET.OBJECT 95d363d3fbdc0b03 1168 0 1167", &OPS, "ibm")
            .expect("valid")
            .expect("a read");
        assert_eq!(
            (e.ts, e.key.as_str(), e.size, e.tenant.as_str()),
            (1232, "95d363d3fbdc0b03", Some(1168), "ibm")
        );
        assert!(
            parse_line("1219008 REST.PUT.OBJECT 8d4fcda3d675bac9 1056", &OPS, "")
                .expect("valid")
                .is_none()
        );
        assert!(
            parse_line("1221974 REST.HEAD.OBJECT 39d177fb735ac5df 528", &OPS, "")
                .expect("valid")
                .is_some()
        );
        assert!(parse_line("12 REST.GET.OBJECT k", &OPS, "").expect("valid").is_some());
        for bad in [
            "",
            "x REST.GET.OBJECT k",
            "1 GET k",
            "1 REST.GET.OBJECT",
            "1 REST.GET.OBJECT k 5 0",
            "1 REST.GET.OBJECT k z",
        ] {
            assert!(parse_line(bad, &OPS, "").is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(line in "\\PC{0,80}") {
            let _ = parse_line(&line, &OPS, "");
        }

        #[test]
        fn round_trips(ms in 0u64..1u64 << 50, key in "[0-9a-f]{1,20}", size in proptest::option::of(any::<u32>())) {
            let line = match size {
                Some(s) => format!("{ms} REST.GET.OBJECT {key} {s} 0 {}", s.saturating_sub(1)),
                None => format!("{ms} REST.GET.OBJECT {key}"),
            };
            let e = parse_line(&line, &OPS, "t").expect("valid").expect("a read");
            prop_assert_eq!(e.ts, (ms / 1000) as i64);
            prop_assert_eq!(e.key, key);
            prop_assert_eq!(e.size, size.map(u64::from));
        }
    }
}
