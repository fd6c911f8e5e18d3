//! Apache / nginx Common Log Format and Combined Log Format.
//!
//! `host ident user [10/Oct/2000:13:55:36 -0700] "GET /a/b.png?x=1 HTTP/1.1" 200 2326 ["referer" "user-agent"]`
//!
//! What counts as a read: a `GET` or `HEAD` answered with 2xx or 304. A 4xx/5xx is not a read of a stored object
//! (the object was missing, forbidden or the server failed), and a 3xx redirect other than 304 points elsewhere.
//! Other methods (`POST`, `PUT`, `OPTIONS`, ...) are valid but not counted (`Ok(None)`), as is a request for the
//! site root `/` (an empty key is no object). The key is the URL path without the query string, percent-decoded,
//! with the leading `/` stripped. The size is the bytes field of a `200` `GET` when it is a number (for a `206`,
//! `304` or `HEAD` the bytes sent are not the object size). Requests without an HTTP version (`"GET /a.gif"`, as
//! in old logs) are parsed; requests that are not `METHOD target [HTTP/x]` are malformed.

use reprieve_core::AccessEvent;

use super::fields::{LogFields, clf_time, is_read_status, key_from_target, parse_status, parse_u64};
use crate::error::LineError;

/// Parses one CLF/combined line. `Ok(None)`: a valid line that is not a counted read.
pub fn parse_line(line: &str, default_tenant: &str) -> Result<Option<AccessEvent>, LineError> {
    let mut f = LogFields::new(line.trim_end_matches(['\r', '\n']));
    let host = f.next().unwrap_or("");
    if host.is_empty() {
        return Err(LineError::new("missing host field"));
    }
    let (Some(_ident), Some(_user), Some(time), Some(request)) = (f.next(), f.next(), f.next(), f.next()) else {
        return Err(LineError::new("too few fields"));
    };
    let ts = clf_time(time).ok_or_else(|| LineError::new(format!("bad time {time:?}")))?;
    let status_text = f.next().ok_or_else(|| LineError::new("missing status"))?;
    let status = parse_status(status_text).ok_or_else(|| LineError::new(format!("bad status {status_text:?}")))?;
    let bytes = f.next().ok_or_else(|| LineError::new("missing bytes field"))?;
    if f.unterminated {
        return Err(LineError::new("unterminated quoted field"));
    }
    // A valid line recording a request that was not served (4xx/5xx, a redirect) is not a read, whatever its
    // request text (scanners send garbage that the server logs verbatim with a 400).
    if !is_read_status(status) {
        return Ok(None);
    }
    let request = request.trim();
    let (method, after_method) = request
        .split_once(' ')
        .ok_or_else(|| LineError::new(format!("bad request {request:?}")))?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(LineError::new(format!("bad method in request {request:?}")));
    }
    let after_method = after_method.trim();
    let target = match after_method.rsplit_once(' ') {
        Some((t, proto)) if proto.starts_with("HTTP/") => t.trim(),
        _ => after_method,
    };
    if target.is_empty() {
        return Err(LineError::new(format!("no target in request {request:?}")));
    }
    if !matches!(method, "GET" | "HEAD") {
        return Ok(None);
    }
    let key = key_from_target(target);
    if key.is_empty() {
        return Ok(None);
    }
    let size = if method == "GET" && status == 200 {
        parse_u64(bytes)
    } else {
        None
    };
    Ok(Some(AccessEvent {
        ts,
        key,
        tenant: default_tenant.to_owned(),
        size,
        op: Some(method.to_owned()),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_combined() {
        let e = parse_line(
            r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/images/kibana%20search.png?x=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh)""#,
            "",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.ts, 1_431_857_103);
        assert_eq!(e.key, "presentations/images/kibana search.png");
        assert_eq!(e.size, Some(203_023));
        assert_eq!(e.op.as_deref(), Some("GET"));
    }

    #[test]
    fn parses_common_and_odd() {
        let e = parse_line(
            r#"199.72.81.55 - - [01/Jul/1995:00:00:01 -0400] "GET /history/apollo/a.gif HTTP/1.0" 200 6245"#,
            "t",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.ts, 804_571_201);
        assert_eq!(e.tenant, "t");
        // no HTTP version
        let e = parse_line(r#"h - - [01/Jul/1995:00:00:01 -0400] "GET /ksc.html" 200 -"#, "")
            .unwrap()
            .unwrap();
        assert_eq!((e.key.as_str(), e.size), ("ksc.html", None));
        // 304 and HEAD count without size
        let e = parse_line(r#"h - - [01/Jul/1995:00:00:01 -0400] "HEAD /a HTTP/1.0" 304 0"#, "")
            .unwrap()
            .unwrap();
        assert_eq!(e.size, None);
        // not reads
        for l in [
            r#"h - - [01/Jul/1995:00:00:01 -0400] "GET /a HTTP/1.0" 404 0"#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "POST /a HTTP/1.0" 200 0"#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 10"#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "GET /a HTTP/1.0" 301 0"#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "\x16\x03\x01" 400 0"#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "-" 400 0"#,
        ] {
            assert_eq!(parse_line(l, ""), Ok(None), "{l}");
        }
        // malformed
        for l in [
            r#" "Python-urllib/2.7""#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "GET /a HTTP/1.0" abc 0"#,
            r#"h - - [bad time] "GET /a HTTP/1.0" 200 0"#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "\x16\x03\x01" 200 0"#,
            r#"h - - [01/Jul/1995:00:00:01 -0400] "GET /a HTTP/1.0" 200"#,
            "garbage",
        ] {
            assert!(parse_line(l, "").is_err(), "{l}");
        }
    }

    fn encode(key: &str) -> String {
        percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .replace("%2F", "/")
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,200}") {
            let _ = parse_line(&line, "");
        }

        #[test]
        fn never_panics_near_valid(prefix in "[ -~]{0,40}", q in "[\"\\[\\] a-z0-9/]{0,30}") {
            let _ = parse_line(&format!("{prefix} - - [01/Jul/1995:00:00:01 -0400] \"{q}\" 200 1"), "");
        }

        #[test]
        fn round_trips(
            ts in 0i64..4_000_000_000,
            key in "[a-z0-9][a-zA-Z0-9 _.%?#&+é/-]{0,40}",
            size in 0u64..u64::MAX,
            head in any::<bool>(),
        ) {
            let days = ts.div_euclid(86_400);
            let (y, m, d) = reprieve_core::time::civil_from_days(days);
            let secs = ts.rem_euclid(86_400);
            let month = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"][m as usize - 1];
            let time = format!("{d:02}/{month}/{y}:{:02}:{:02}:{:02} +0000", secs / 3600, secs % 3600 / 60, secs % 60);
            let method = if head { "HEAD" } else { "GET" };
            let line = format!(
                "10.0.0.1 - frank [{time}] \"{method} /{}?q=1 HTTP/1.1\" 200 {size} \"-\" \"UA/1.0 (x; y)\"",
                encode(&key)
            );
            let e = parse_line(&line, "").unwrap().unwrap();
            prop_assert_eq!(e.ts, ts);
            prop_assert_eq!(e.key, key);
            prop_assert_eq!(e.size, if head { None } else { Some(size) });
            prop_assert_eq!(e.op.as_deref(), Some(method));
        }
    }
}
