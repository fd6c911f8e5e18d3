//! The readers against public real-world logs in `/work/shared/data` (skipped with a note when absent).

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::PathBuf;

use reprieve_batch::{LogFormat, ReadOptions, SourceFormat, read_events};

fn data(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipping: {} not present", p.display());
        }
        None
    }
}

#[test]
fn elastic_apache_combined() {
    let Some(path) = data("elastic-apache/access.log") else {
        return;
    };
    let (events, report) = read_events(&path, &ReadOptions::default()).unwrap();
    assert_eq!(report.format_detected, SourceFormat::Clf);
    assert_eq!(report.lines, 10_000);
    assert_eq!(report.lines, report.events + report.ignored + report.malformed);
    assert!(report.malformed <= 10, "{report:?}");
    assert!((8_500..=9_500).contains(&report.events), "{report:?}");
    let keys: HashSet<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert!((1_100..=1_368).contains(&keys.len()), "{} keys", keys.len());
    assert!(events.iter().all(|e| !e.key.is_empty() && !e.key.starts_with('/')));
    // 2015-05-17 .. 2015-05-21
    assert!(events.iter().all(|e| (1_431_820_800..1_432_252_800).contains(&e.ts)));
    assert!(events.iter().filter(|e| e.size.is_some()).count() > 8_000);
    assert!(keys.contains("presentations/logstash-monitorama-2013/images/kibana-search.png"));
}

#[test]
fn erddap_nginx_with_broken_lines() {
    let Some(dir) = data("erddap-nginx") else {
        return;
    };
    let (events, report) = read_events(&dir.join("tomcat-access.log.1"), &ReadOptions::default()).unwrap();
    assert_eq!(report.format_detected, SourceFormat::Clf);
    assert_eq!(report.lines, 906);
    assert_eq!(report.lines, report.events + report.ignored + report.malformed);
    // broken user-agent fragments: counted, not fatal
    assert!((100..=200).contains(&report.malformed), "{report:?}");
    assert_eq!(report.first_malformed.len(), 5);
    assert!((600..=720).contains(&report.events), "{report:?}");
    assert_eq!(events.len() as u64, report.events);
    // strict mode names the file and the line
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    let err = read_events(&dir.join("tomcat-access.log.1"), &strict).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("tomcat-access.log.1:") && msg.contains(&format!(":{}:", report.first_malformed[0].0)),
        "{msg}"
    );
    // all nine files
    // all nine files: exactly the broken user-agent fragments (lines not starting with an IP) are malformed;
    // file 8 is mostly such fragments
    let (mut total, mut bad, mut events) = (0, 0, 0);
    let mut keys = HashSet::new();
    for i in 1..=9 {
        let path = dir.join(format!("tomcat-access.log.{i}"));
        let (ev, r) = read_events(&path, &ReadOptions::default()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let fragments = text
            .lines()
            .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit()))
            .count() as u64;
        assert_eq!(r.malformed, fragments, "file {i}: {r:?}");
        assert_eq!(r.format_detected, SourceFormat::Clf);
        total += r.lines;
        bad += r.malformed;
        events += r.events;
        keys.extend(ev.into_iter().map(|e| e.key));
    }
    assert_eq!(total, 16_275);
    assert_eq!(bad, 5_796);
    assert!((8_500..=10_479).contains(&events), "{events}");
    assert!((1_000..=3_435).contains(&keys.len()), "{}", keys.len());
}

#[test]
fn nasa_common_log() {
    let Some(path) = data("nasa-http-sample/NASA_access_log_small.txt") else {
        return;
    };
    let opts = ReadOptions {
        format: LogFormat::Clf,
        default_tenant: "nasa".into(),
        ..ReadOptions::default()
    };
    let (events, report) = read_events(&path, &opts).unwrap();
    assert_eq!(report.lines, 10_000);
    assert!(report.malformed <= 20, "{report:?}");
    assert!((9_000..=9_600).contains(&report.events), "{report:?}");
    let keys: HashSet<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert!((700..=818).contains(&keys.len()), "{}", keys.len());
    assert!(events.iter().all(|e| e.tenant == "nasa"));
    // 1995-07-01 04:00Z .. 08:00Z
    assert!(events.iter().all(|e| (804_571_200..804_585_600).contains(&e.ts)));
    // auto-detection agrees
    let (_, auto) = read_events(&path, &ReadOptions::default()).unwrap();
    assert_eq!(auto.events, report.events);
}

#[test]
fn ibm_cos_trace() {
    let Some(path) = data("ibm-cos-sample/IBMObjectStoreSample") else {
        return;
    };
    let (events, report) = read_events(&path, &ReadOptions::default()).unwrap();
    assert_eq!(report.format_detected, SourceFormat::IbmCos);
    assert_eq!(report.lines, 2_000);
    assert_eq!(report.malformed, 0, "{report:?}");
    // GET 1,154 + HEAD 736 are reads; PUT 77 and COPY 33 are not.
    assert_eq!(report.events, 1_154 + 736);
    let keys: HashSet<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.len() <= 543);
    // 40 minutes, in milliseconds from 1,219 s to 3,614 s after the trace start.
    assert!(events.iter().all(|e| (1_219..=3_615).contains(&e.ts)));
}
