//! S3 server access log parsing throughput. The target (>= 100 MB/s) applies to a release build:
//! `cargo test -p reprieve-batch --release --test s3_throughput -- --ignored --nocapture`.
//! In a debug build the test only reports the number.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::time::Instant;

use reprieve_batch::formats::s3;

#[test]
#[ignore = "timing; run in release"]
fn s3_parse_throughput() {
    let mut text = String::new();
    for i in 0..200_000u32 {
        let op = if i % 5 == 0 {
            "REST.PUT.OBJECT"
        } else {
            "REST.GET.OBJECT"
        };
        text.push_str(&format!(
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:{:02}:{:02} +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE{i} {op} photos/2019/08/img{i}.jpg \"GET /awsexamplebucket1/photos/2019/08/img{i}.jpg HTTP/1.1\" 200 - 113 {} 7 6 \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 - -\n",
            (i / 60) % 60,
            i % 60,
            1000 + i
        ));
    }
    let ops = s3::DEFAULT_OPERATIONS;
    let start = Instant::now();
    let mut events = 0usize;
    for line in text.lines() {
        if s3::parse_line(line, &ops).unwrap().is_some() {
            events += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mb_s = text.len() as f64 / 1e6 / secs;
    eprintln!(
        "S3 access log: {:.1} MB in {secs:.3}s = {mb_s:.0} MB/s ({events} events)",
        text.len() as f64 / 1e6
    );
    assert_eq!(events, 160_000);
    if !cfg!(debug_assertions) {
        assert!(mb_s >= 100.0, "{mb_s:.0} MB/s");
    }

    // the whole streaming reader: file I/O, line splitting, UTF-8 check, counting
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s3.log");
    std::fs::write(&path, &text).unwrap();
    let start = Instant::now();
    let mut n = 0usize;
    let report = reprieve_batch::for_each_event(&path, &reprieve_batch::ReadOptions::default(), |_| n += 1).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "for_each_event: {:.0} MB/s ({} lines)",
        text.len() as f64 / 1e6 / secs,
        report.lines
    );
    assert_eq!(n, 160_000);
}
