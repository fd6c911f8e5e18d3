//! Allocation-free field splitting and the small value parsers shared by the log formats.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use reprieve_core::time::{DAY, HOUR, MINUTE, UnixSeconds, days_from_civil, parse_clf_time};

/// Splits a log line on single spaces, where a field that starts with `[` runs to the next `]` and a field that
/// starts with `"` runs to the next unescaped `"`. Yields borrowed slices with the brackets/quotes removed.
/// Never allocates. An unterminated bracket or quote yields the rest of the line and sets `unterminated`.
#[derive(Debug, Clone)]
pub struct LogFields<'a> {
    line: &'a str,
    pos: usize,
    done: bool,
    pub unterminated: bool,
}

impl<'a> LogFields<'a> {
    pub fn new(line: &'a str) -> Self {
        Self {
            line,
            pos: 0,
            done: line.is_empty(),
            unterminated: false,
        }
    }
}

impl<'a> Iterator for LogFields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let bytes = self.line.as_bytes();
        let len = bytes.len();
        let start = self.pos;
        if start >= len {
            self.done = true;
            return Some("");
        }
        let (field, after) = match bytes[start] {
            b'[' => match memchr(b']', &bytes[start + 1..]) {
                Some(i) => (start + 1..start + 1 + i, start + 2 + i),
                None => {
                    self.unterminated = true;
                    (start + 1..len, len)
                }
            },
            b'"' => {
                let mut i = start + 1;
                let mut end = None;
                while i < len {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            end = Some(i);
                            break;
                        }
                        _ => i += 1,
                    }
                }
                match end {
                    Some(e) => (start + 1..e, e + 1),
                    None => {
                        self.unterminated = true;
                        (start + 1..len, len)
                    }
                }
            }
            _ => match memchr(b' ', &bytes[start..]) {
                Some(i) => (start..start + i, start + i),
                None => (start..len, len),
            },
        };
        // A closing quote/bracket glued to more text is tolerated: skip to the next space.
        let next = match memchr(b' ', &bytes[after.min(len)..]) {
            Some(i) => after + i,
            None => len,
        };
        if next >= len {
            self.done = true;
        } else {
            self.pos = next + 1;
        }
        // Field boundaries are at ASCII delimiters, so always on char boundaries.
        self.line.get(field)
    }
}

#[inline]
fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Splits one CSV record (RFC 4180 quoting, `""` inside quotes) into fields. Borrowed unless a field contains
/// an escaped quote. Records spanning several lines are not supported (the reader sees one line at a time).
pub fn csv_fields(line: &str) -> CsvFields<'_> {
    CsvFields {
        line,
        pos: 0,
        done: false,
    }
}

#[derive(Debug, Clone)]
pub struct CsvFields<'a> {
    line: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for CsvFields<'a> {
    type Item = Result<Cow<'a, str>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let bytes = self.line.as_bytes();
        let len = bytes.len();
        let start = self.pos;
        if start < len && bytes[start] == b'"' {
            let mut i = start + 1;
            let mut escaped = false;
            loop {
                if i >= len {
                    self.done = true;
                    return Some(Err("unterminated quoted field"));
                }
                if bytes[i] == b'"' {
                    if i + 1 < len && bytes[i + 1] == b'"' {
                        escaped = true;
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            let inner = &self.line[start + 1..i];
            let after = i + 1;
            if after >= len {
                self.done = true;
            } else if bytes[after] == b',' {
                self.pos = after + 1;
            } else {
                self.done = true;
                return Some(Err("text after a closing quote"));
            }
            Some(Ok(if escaped {
                Cow::Owned(inner.replace("\"\"", "\""))
            } else {
                Cow::Borrowed(inner)
            }))
        } else {
            match memchr(b',', &bytes[start.min(len)..]) {
                Some(i) => {
                    self.pos = start + i + 1;
                    Some(Ok(Cow::Borrowed(&self.line[start..start + i])))
                }
                None => {
                    self.done = true;
                    Some(Ok(Cow::Borrowed(self.line.get(start..).unwrap_or(""))))
                }
            }
        }
    }
}

/// Percent-decodes a URL path or key (invalid UTF-8 after decoding is replaced, never fatal).
pub fn percent_decode(text: &str) -> String {
    if !text.as_bytes().contains(&b'%') {
        return text.to_owned();
    }
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Like [`percent_decode`], and `+` means a space (form encoding, as S3 Inventory CSV writes keys).
pub fn form_decode(text: &str) -> String {
    if text.contains('+') {
        percent_decode(&text.replace('+', " "))
    } else {
        percent_decode(text)
    }
}

/// The object key of a request target: scheme and host dropped (absolute-form targets), query string and
/// fragment dropped, percent-decoded, leading `/`s stripped (`//favicon.ico` is `favicon.ico`, as servers
/// collapse them).
pub fn key_from_target(target: &str) -> String {
    let mut path = target;
    for scheme in ["http://", "https://"] {
        if let Some(rest) = path.strip_prefix(scheme) {
            path = rest.find('/').map_or("", |i| &rest[i..]);
        }
    }
    if let Some(i) = path.find(['?', '#']) {
        path = &path[..i];
    }
    let path = path.trim_start_matches('/');
    let decoded = percent_decode(path);
    if decoded.starts_with('/') {
        // an encoded leading slash (`%2F`) is part of the name as sent; keep the decoded form without it
        decoded.trim_start_matches('/').to_owned()
    } else {
        decoded
    }
}

fn two_digits(b: &[u8]) -> Option<i64> {
    if b.len() == 2 && b[0].is_ascii_digit() && b[1].is_ascii_digit() {
        Some(i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'))
    } else {
        None
    }
}

/// Parses `10/Oct/2000:13:55:36 -0700`. A fixed-width fast path without allocation for the exact shape every
/// server writes, falling back to [`parse_clf_time`] for anything else; both agree (property-tested).
pub fn clf_time(text: &str) -> Option<UnixSeconds> {
    let b = text.as_bytes();
    if b.len() == 26
        && b[2] == b'/'
        && b[6] == b'/'
        && b[11] == b':'
        && b[14] == b':'
        && b[17] == b':'
        && b[20] == b' '
        && matches!(b[21], b'+' | b'-')
    {
        let day = two_digits(&b[0..2])?;
        let month = match &b[3..6] {
            b"Jan" => 1,
            b"Feb" => 2,
            b"Mar" => 3,
            b"Apr" => 4,
            b"May" => 5,
            b"Jun" => 6,
            b"Jul" => 7,
            b"Aug" => 8,
            b"Sep" => 9,
            b"Oct" => 10,
            b"Nov" => 11,
            b"Dec" => 12,
            _ => return parse_clf_time(text),
        };
        let year = two_digits(&b[7..9])? * 100 + two_digits(&b[9..11])?;
        let h = two_digits(&b[12..14])?;
        let mi = two_digits(&b[15..17])?;
        let s = two_digits(&b[18..20])?;
        let oh = two_digits(&b[22..24])?;
        let om = two_digits(&b[24..26])?;
        if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let sign = if b[21] == b'-' { -1 } else { 1 };
        let offset = sign * (oh * HOUR + om * MINUTE);
        return Some(days_from_civil(year, month, day as u32) * DAY + h * HOUR + mi * MINUTE + s - offset);
    }
    parse_clf_time(text)
}

/// A decimal u64 (`-` or anything else is `None`).
#[inline]
pub fn parse_u64(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.parse().ok()
}

/// An HTTP status: three ASCII digits.
#[inline]
pub fn parse_status(text: &str) -> Option<u16> {
    let b = text.as_bytes();
    if b.len() == 3 && b.iter().all(u8::is_ascii_digit) {
        Some(u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0'))
    } else {
        None
    }
}

/// Statuses that mean the stored object was served: 2xx, or 304 (the client's cached copy is still good, which
/// is a read of the object). 4xx/5xx (and 3xx redirects) are not reads of a stored object.
#[inline]
pub fn is_read_status(status: u16) -> bool {
    (200..300).contains(&status) || status == 304
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_log_fields() {
        let f: Vec<_> = LogFields::new(r#"a b [c d] "e \" f" - "#).collect();
        assert_eq!(f, vec!["a", "b", "c d", r#"e \" f"#, "-", ""]);
        let f: Vec<_> = LogFields::new("a").collect();
        assert_eq!(f, vec!["a"]);
        let f: Vec<_> = LogFields::new("").collect();
        assert!(f.is_empty());
        let mut it = LogFields::new(r#"a "unterminated"#);
        assert_eq!(it.next(), Some("a"));
        assert_eq!(it.next(), Some("unterminated"));
        assert!(it.unterminated);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn splits_csv() {
        let f: Vec<_> = csv_fields(r#"a,"b,c","d""e",,"#)
            .map(|r| r.map(|c| c.into_owned()))
            .collect();
        assert_eq!(
            f,
            vec![
                Ok("a".to_owned()),
                Ok("b,c".to_owned()),
                Ok("d\"e".to_owned()),
                Ok(String::new()),
                Ok(String::new())
            ]
        );
        assert!(csv_fields(r#""abc"#).any(|r| r.is_err()));
    }

    #[test]
    fn keys_from_targets() {
        assert_eq!(key_from_target("/a/b%20c.png?x=1"), "a/b c.png");
        assert_eq!(key_from_target("http://host/a.png"), "a.png");
        assert_eq!(key_from_target("/"), "");
        assert_eq!(key_from_target("//favicon.ico"), "favicon.ico");
        assert_eq!(form_decode("a+b%2Bc"), "a b+c");
    }

    #[test]
    fn fast_clf_time_agrees() {
        for t in [
            "10/Oct/2000:13:55:36 -0700",
            "01/Jul/1995:00:00:01 -0400",
            "17/May/2015:10:05:03 +0000",
            "29/Feb/2024:23:59:59 +0530",
        ] {
            assert_eq!(clf_time(t), parse_clf_time(t), "{t}");
            assert!(clf_time(t).is_some());
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_clf_time_matches_core(
            day in 0u32..40, month in 0usize..13, year in 1000i64..3000, h in 0i64..30, m in 0i64..70,
            s in 0i64..70, sign in proptest::bool::ANY, oh in 0i64..24, om in 0i64..60,
        ) {
            const M: [&str; 13] = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec","Foo"];
            let text = format!(
                "{day:02}/{}/{year}:{h:02}:{m:02}:{s:02} {}{oh:02}{om:02}",
                M[month],
                if sign { '+' } else { '-' }
            );
            proptest::prop_assert_eq!(clf_time(&text), parse_clf_time(&text), "{}", text);
        }

        #[test]
        fn splitters_never_panic(line in ".{0,200}") {
            let _ = LogFields::new(&line).count();
            let _ = csv_fields(&line).count();
            let _ = key_from_target(&line);
            let _ = clf_time(&line);
        }
    }
}
