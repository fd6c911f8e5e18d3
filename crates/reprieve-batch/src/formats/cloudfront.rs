//! CloudFront standard (access) logs: tab-separated, with `#Version:` and `#Fields:` header lines giving the
//! column order.
//!
//! What counts as a read: a `GET` or `HEAD` with status 2xx or 304. The timestamp is the `date` and `time` columns
//! (UTC). The key is `cs-uri-stem`, percent-decoded, leading `/` stripped. The tenant is `x-host-header`, else
//! `cs(Host)`, else the default tenant. The size is `sc-content-len` of a `200` `GET` when that column exists
//! (`sc-bytes` includes headers, so it is not used). Other methods/statuses are valid but not counted.

use reprieve_core::AccessEvent;
use reprieve_core::time::{DAY, HOUR, MINUTE, parse_rfc3339};

use super::fields::{is_read_status, key_from_target, parse_status, parse_u64};
use crate::error::LineError;

/// The standard log's columns when a file has no `#Fields:` line.
pub const DEFAULT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem \
sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header \
cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type \
cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type \
sc-content-type sc-content-len sc-range-start sc-range-end";

/// Most columns a line may have for the required ones to be found.
const MAX_COLUMNS: usize = 128;

/// Column positions from a `#Fields:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    date: usize,
    time: usize,
    method: usize,
    stem: usize,
    status: usize,
    host_header: Option<usize>,
    host: Option<usize>,
    content_len: Option<usize>,
    /// Highest required index.
    needed: usize,
}

impl Default for Fields {
    fn default() -> Self {
        Self::from_names(DEFAULT_FIELDS).unwrap_or_else(|_| unreachable!("default fields are complete"))
    }
}

impl Fields {
    /// Parses a `#Fields: date time ...` header line (the `#Fields:` prefix is optional).
    pub fn from_header(line: &str) -> Result<Self, LineError> {
        let names = line.trim().strip_prefix("#Fields:").unwrap_or(line);
        Self::from_names(names)
    }

    fn from_names(names: &str) -> Result<Self, LineError> {
        let names: Vec<&str> = names.split_whitespace().collect();
        let find = |n: &str| names.iter().position(|x| x.eq_ignore_ascii_case(n));
        let need = |n: &'static str| find(n).ok_or_else(|| LineError::new(format!("#Fields lacks {n}")));
        let f = Self {
            date: need("date")?,
            time: need("time")?,
            method: need("cs-method")?,
            stem: need("cs-uri-stem")?,
            status: need("sc-status")?,
            host_header: find("x-host-header"),
            host: find("cs(Host)"),
            content_len: find("sc-content-len"),
            needed: 0,
        };
        let needed = [f.date, f.time, f.method, f.stem, f.status]
            .into_iter()
            .max()
            .unwrap_or(0);
        if needed >= MAX_COLUMNS {
            return Err(LineError::new(format!(
                "#Fields puts a required column beyond column {MAX_COLUMNS}"
            )));
        }
        Ok(Self { needed, ..f })
    }
}

fn hms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let n = |s: &[u8]| -> Option<i64> {
        if s.iter().all(u8::is_ascii_digit) {
            Some(i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'))
        } else {
            None
        }
    };
    let (h, m, s) = (n(&b[0..2])?, n(&b[3..5])?, n(&b[6..8])?);
    if h > 23 || m > 59 || s > 60 || (b.len() > 8 && b[8] != b'.') {
        return None;
    }
    Some(h * HOUR + m * MINUTE + s)
}

/// Parses one data line (header/comment lines starting with `#` are `Ok(None)`).
pub fn parse_line(line: &str, fields: &Fields, default_tenant: &str) -> Result<Option<AccessEvent>, LineError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.starts_with('#') {
        return Ok(None);
    }
    // Borrowing split into a stack array: CloudFront has ~33 columns.
    let mut cols: [&str; MAX_COLUMNS] = [""; MAX_COLUMNS];
    let mut n = 0;
    for c in line.split('\t') {
        if n < cols.len() {
            cols[n] = c;
        }
        n += 1;
    }
    if n <= fields.needed {
        return Err(LineError::new(format!(
            "{n} tab-separated fields, expected at least {}",
            fields.needed + 1
        )));
    }
    let get = |i: Option<usize>| i.filter(|&i| i < n.min(MAX_COLUMNS)).map(|i| cols[i]);
    let date = cols[fields.date];
    let day = parse_rfc3339(date)
        .filter(|_| date.len() == 10)
        .ok_or_else(|| LineError::new(format!("bad date {date:?}")))?;
    let time = cols[fields.time];
    let secs = hms(time).ok_or_else(|| LineError::new(format!("bad time {time:?}")))?;
    debug_assert_eq!(day.rem_euclid(DAY), 0);
    let status_text = cols[fields.status];
    let status = parse_status(status_text).ok_or_else(|| LineError::new(format!("bad sc-status {status_text:?}")))?;
    let method = cols[fields.method];
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(LineError::new(format!("bad cs-method {method:?}")));
    }
    if !matches!(method, "GET" | "HEAD") || !is_read_status(status) {
        return Ok(None);
    }
    let key = key_from_target(cols[fields.stem]);
    if key.is_empty() || key == "-" {
        return Ok(None);
    }
    let tenant = [get(fields.host_header), get(fields.host)]
        .into_iter()
        .flatten()
        .find(|h| !h.is_empty() && *h != "-")
        .unwrap_or(default_tenant);
    let size = if method == "GET" && status == 200 {
        get(fields.content_len).and_then(parse_u64)
    } else {
        None
    };
    Ok(Some(AccessEvent {
        ts: day + secs,
        key,
        tenant: tenant.to_owned(),
        size,
        op: Some(method.to_owned()),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";
    const LINE: &str = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index%20page.html\t200\t-\tMozilla/5.0%20(Windows)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\twww.example.com\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-";

    #[test]
    fn parses_standard_line() {
        let f = Fields::from_header(HEADER).unwrap();
        assert_eq!(f, Fields::default());
        let e = parse_line(LINE, &f, "").unwrap().unwrap();
        assert_eq!(e.ts, parse_rfc3339("2019-12-04T21:02:31Z").unwrap());
        assert_eq!(e.key, "index page.html");
        assert_eq!(e.tenant, "www.example.com");
        assert_eq!(e.size, Some(78));
        let post = LINE.replace("\tGET\t", "\tPOST\t");
        assert_eq!(parse_line(&post, &f, ""), Ok(None));
        let e404 = LINE.replace("\t200\t", "\t404\t");
        assert_eq!(parse_line(&e404, &f, ""), Ok(None));
        assert!(parse_line("2019-12-04\t21:02:31", &f, "").is_err());
        assert!(parse_line(&LINE.replace("2019-12-04", "yesterday"), &f, "").is_err());
        assert_eq!(parse_line("#Version: 1.0", &f, ""), Ok(None));
        assert!(Fields::from_header("#Fields: date time").is_err());
    }

    #[test]
    fn custom_order_and_host() {
        let f = Fields::from_header("#Fields: cs-uri-stem sc-status cs-method time date cs(Host)").unwrap();
        let e = parse_line("/a.png\t304\tHEAD\t00:00:01\t1970-01-02\tcdn.example", &f, "d")
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.ts, e.key.as_str(), e.tenant.as_str(), e.size),
            (86_401, "a.png", "cdn.example", None)
        );
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,300}") {
            let _ = parse_line(&line, &Fields::default(), "");
        }

        #[test]
        fn never_panics_tabbed(parts in proptest::collection::vec("[a-zA-Z0-9:/ .%-]{0,12}", 0..40)) {
            let _ = parse_line(&parts.join("\t"), &Fields::default(), "");
        }

        #[test]
        fn round_trips(
            ts in 0i64..4_000_000_000,
            key in "[a-zA-Z0-9][a-zA-Z0-9 _.%?#&+=é/-]{0,40}",
            size in 0u64..u64::MAX,
            head in any::<bool>(),
        ) {
            let t = reprieve_core::time::format_rfc3339(ts);
            let (date, time) = (&t[..10], &t[11..19]);
            let enc = percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC).to_string();
            let method = if head { "HEAD" } else { "GET" };
            let line = LINE
                .replacen("2019-12-04\t21:02:31", &format!("{date}\t{time}"), 1)
                .replacen("/index%20page.html", &format!("/{enc}"), 1)
                .replacen("\tGET\t", &format!("\t{method}\t"), 1)
                .replacen("text/html\t78", &format!("text/html\t{size}"), 1);
            let e = parse_line(&line, &Fields::default(), "").unwrap().unwrap();
            prop_assert_eq!(e.ts, ts);
            prop_assert_eq!(e.key, key);
            prop_assert_eq!(e.size, if head { None } else { Some(size) });
            prop_assert_eq!(e.op.as_deref(), Some(method));
        }
    }
}
