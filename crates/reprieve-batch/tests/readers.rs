//! File-level reader tests on small fixtures written into a temp dir: gzip, Parquet, auto-detection, strictness,
//! inventories and S3 Inventory manifests.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use polars::prelude::*;
use reprieve_batch::{
    InventoryOptions, LogFormat, ReadError, ReadOptions, SourceFormat, for_each_event, read_events, read_inventory,
};
use reprieve_core::StorageClass;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn write_gz(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    let mut enc = GzEncoder::new(File::create(&p).unwrap(), Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    p
}

fn write_parquet(dir: &Path, name: &str, df: &mut DataFrame) -> PathBuf {
    let p = dir.join(name);
    ParquetWriter::new(File::create(&p).unwrap()).finish(df).unwrap();
    p
}

const S3_LOG: &str = r#"owner bucket-a [06/Feb/2019:00:00:38 +0000] 192.0.2.3 arn:aws:iam::1:user/x 3E57427F3EXAMPLE REST.GET.OBJECT photos/a%20b.jpg "GET /bucket-a/photos/a%20b.jpg HTTP/1.1" 200 - 113 2662992 7 6 "-" "S3Console/0.4" - hostid= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader bucket-a.s3.amazonaws.com TLSV1.2 - -
owner bucket-a [06/Feb/2019:00:00:39 +0000] 192.0.2.3 arn:aws:iam::1:user/x 3E57427F3EXAMPLF REST.PUT.OBJECT photos/c.jpg "PUT /bucket-a/photos/c.jpg HTTP/1.1" 200 - - 1000 7 6 "-" "S3Console/0.4" -
owner bucket-a [06/Feb/2019:00:00:40 +0000] 192.0.2.3 arn:aws:iam::1:user/x 3E57427F3EXAMPLG REST.HEAD.OBJECT photos/c.jpg "HEAD /bucket-a/photos/c.jpg HTTP/1.1" 200 - - 1000 7 6 "-" "aws-cli/2 (linux)" -
garbage line
owner bucket-b [06/Feb/2019:00:01:00 +0000] 192.0.2.3 - 3E57427F3EXAMPLH REST.GET.BUCKET - "GET /bucket-b?list-type=2 HTTP/1.1" 200 - 500 - 7 6 "-" "aws-cli/2" -
"#;

#[test]
fn s3_log_plain_and_gzip_autodetected() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        write(dir.path(), "s3.log", S3_LOG),
        write_gz(dir.path(), "s3.log.txt", S3_LOG), // extension says nothing; magic bytes do
    ] {
        let (events, report) = read_events(&path, &ReadOptions::default()).unwrap();
        assert_eq!(report.format_detected, SourceFormat::S3);
        assert_eq!(
            (report.lines, report.events, report.ignored, report.malformed),
            (5, 2, 2, 1)
        );
        assert_eq!(report.first_malformed[0].0, 4);
        assert_eq!(events[0].key, "photos/a b.jpg");
        assert_eq!(events[0].tenant, "bucket-a");
        assert_eq!(events[0].size, Some(2_662_992));
        assert_eq!(events[1].op.as_deref(), Some("REST.HEAD.OBJECT"));
    }
    // configurable operations
    let path = dir.path().join("s3.log");
    let only_put = ReadOptions {
        format: LogFormat::S3,
        s3_operations: vec!["REST.PUT.OBJECT".into()],
        ..ReadOptions::default()
    };
    let (events, _) = read_events(&path, &only_put).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, "photos/c.jpg");
    // strict
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    match read_events(&path, &strict) {
        Err(ReadError::Malformed { path: p, line, .. }) => {
            assert_eq!((p, line), (path.clone(), 4));
        }
        other => panic!("{other:?}"),
    }
    // streaming variant
    let mut n = 0;
    let report = for_each_event(&path, &ReadOptions::default(), |_| n += 1).unwrap();
    assert_eq!(n, report.events);
}

#[test]
fn cloudfront_gzip() {
    let text = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query\n\
2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td1.cloudfront.net\t/img/a%20b.png\t200\t-\tMozilla\t-\n\
2019-12-04\t21:02:32\tLAX1\t392\t192.0.2.100\tPOST\td1.cloudfront.net\t/api\t200\t-\tMozilla\t-\n\
2019-12-04\t21:02:33\tLAX1\t392\t192.0.2.100\tGET\td1.cloudfront.net\t/img/c.png\t304\t-\tMozilla\t-\n\
truncated\tline\n";
    let dir = tempfile::tempdir().unwrap();
    let path = write_gz(dir.path(), "E2.2019-12-04-21.abcd.gz", text);
    let (events, report) = read_events(&path, &ReadOptions::default()).unwrap();
    assert_eq!(report.format_detected, SourceFormat::CloudFront);
    assert_eq!(
        (report.lines, report.events, report.ignored, report.malformed),
        (6, 2, 3, 1)
    );
    assert_eq!(events[0].key, "img/a b.png");
    assert_eq!(events[0].tenant, "d1.cloudfront.net");
    assert_eq!(events[1].ts, events[0].ts + 2);
}

#[test]
fn events_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "events.csv",
        "key,ts,size,extra\nimg/a.jpg,1700000000,10,x\n\"img/b,c.jpg\",2024-05-12T10:00:00Z,,y\nimg/d.jpg,not-a-time,1,z\n",
    );
    let (events, report) = read_events(&csv, &ReadOptions::default()).unwrap();
    assert_eq!(report.format_detected, SourceFormat::EventsCsv);
    assert_eq!((report.events, report.ignored, report.malformed), (2, 1, 1));
    assert_eq!(events[1].key, "img/b,c.jpg");
    assert_eq!(events[1].ts, 1_715_508_000);
    // a CSV without a ts column given as events CSV is a format error naming the line
    let bad = write(dir.path(), "bad.csv", "key,when\na,1\n");
    let opts = ReadOptions {
        format: LogFormat::EventsCsv,
        ..ReadOptions::default()
    };
    assert!(matches!(
        read_events(&bad, &opts),
        Err(ReadError::Malformed { line: 1, .. })
    ));

    // Parquet, Int64 seconds
    let mut df = df!(
        "ts" => [1_700_000_000i64, 1_700_000_060, 1_700_000_120],
        "key" => ["a.jpg", "b.jpg", ""],
        "size" => [Some(5i64), None, Some(1)],
        "tenant" => ["t1", "", "t1"],
        "op" => ["GET", "PUT", "GET"],
    )
    .unwrap();
    let pq = write_parquet(dir.path(), "events.bin", &mut df);
    let opts = ReadOptions {
        default_tenant: "dflt".into(),
        ..ReadOptions::default()
    };
    let (events, report) = read_events(&pq, &opts).unwrap();
    assert_eq!(report.format_detected, SourceFormat::EventsParquet);
    assert_eq!(
        (report.lines, report.events, report.ignored, report.malformed),
        (3, 1, 1, 1)
    );
    assert_eq!(events[0].key, "a.jpg");
    assert_eq!(events[0].size, Some(5));
    assert_eq!(events[0].tenant, "t1");

    // Parquet, Datetime(ms) timestamps, many rows (more than one batch)
    let n = 70_000usize;
    let ts: Vec<i64> = (0..n as i64).map(|i| 1_700_000_000_000 + i * 1000).collect();
    let keys: Vec<String> = (0..n).map(|i| format!("k/{}", i % 97)).collect();
    let ts = Series::new("ts".into(), ts)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    let mut df = DataFrame::new(n, vec![ts.into(), Series::new("key".into(), keys).into()]).unwrap();
    let pq = write_parquet(dir.path(), "events2.parquet", &mut df);
    let mut count = 0usize;
    let mut last = 0;
    let report = for_each_event(&pq, &ReadOptions::default(), |e| {
        assert!(e.ts >= last);
        last = e.ts;
        count += 1;
    })
    .unwrap();
    assert_eq!(count, n);
    assert_eq!(report.events, n as u64);
    assert_eq!(last, 1_700_000_000 + n as i64 - 1);
}

#[test]
fn undetectable_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "x.txt", "hello world\nnothing here\n");
    assert!(matches!(
        read_events(&p, &ReadOptions::default()),
        Err(ReadError::Format { .. })
    ));
    let missing = dir.path().join("nope.log");
    let err = read_events(&missing, &ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nope.log"), "{err}");
}

const GENERIC: &str = "tenant,key,size,created,modified,storage_class,owner,legal_hold,retain_until,live_references,content_type,cohort,unknown\n\
t0,img/2024/a_300x200.jpg,52311,1700000000,1700000000,STANDARD,team-a,false,,0,,popular,x\n\
t0,img/b.png,10,2024-05-12T10:00:00Z,,GLACIER,,ON,2030-01-01T00:00:00Z,2,image/png,,y\n\
t0,img/c.png,ten,,,,,,,,,,\n\
,img/d.png,,,,,,,,,,,\n";

#[test]
fn generic_inventory_csv_gzip_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let opts = InventoryOptions {
        default_tenant: "dflt".into(),
        ..InventoryOptions::default()
    };
    for p in [
        write(dir.path(), "inv.csv", GENERIC),
        write_gz(dir.path(), "inv.csv.gz", GENERIC),
    ] {
        let (rows, report) = read_inventory(&p, &opts).unwrap();
        assert_eq!(report.format_detected, SourceFormat::InventoryCsv);
        assert_eq!(
            (report.lines, report.events, report.ignored, report.malformed),
            (5, 3, 1, 1)
        );
        assert_eq!(report.first_malformed[0].0, 4);
        let a = &rows[0];
        assert_eq!(a.record.key, "img/2024/a_300x200.jpg");
        assert_eq!(a.record.tenant, "t0");
        assert_eq!(a.record.size, Some(52_311));
        assert_eq!(a.record.created, Some(1_700_000_000));
        assert_eq!(a.record.storage_class, StorageClass::Standard);
        assert_eq!(a.record.owner.as_deref(), Some("team-a"));
        assert!(!a.record.legal_hold);
        assert_eq!(a.cohort.as_deref(), Some("popular"));
        let b = &rows[1];
        assert!(b.record.legal_hold);
        assert_eq!(b.record.retain_until, Some(1_893_456_000));
        assert_eq!(b.record.live_references, 2);
        assert_eq!(b.record.storage_class, StorageClass::Glacier);
        assert_eq!(b.record.owner, None);
        assert_eq!(b.record.modified, None);
        assert_eq!(b.record.content_type.as_deref(), Some("image/png"));
        assert_eq!(rows[2].record.tenant, "dflt");
    }
    let strict = InventoryOptions {
        strict: true,
        ..InventoryOptions::default()
    };
    assert!(matches!(
        read_inventory(&dir.path().join("inv.csv"), &strict),
        Err(ReadError::Malformed { line: 4, .. })
    ));

    // Parquet with typed columns
    let modified = Series::new("last_modified_date".into(), [1_700_000_000_000i64, 1_700_000_500_000])
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))
        .unwrap();
    let mut df = DataFrame::new(
        2,
        vec![
            Series::new("bucket".into(), ["b1", "b1"]).into(),
            Series::new("key".into(), ["x/1.jpg", "x/2.jpg"]).into(),
            Series::new("size".into(), [Some(100i64), None]).into(),
            modified.into(),
            Series::new("legal_hold".into(), [true, false]).into(),
            Series::new("storage_class".into(), ["STANDARD_IA", "STANDARD"]).into(),
        ],
    )
    .unwrap();
    let p = write_parquet(dir.path(), "inv.parquet", &mut df);
    let (rows, report) = read_inventory(&p, &opts).unwrap();
    assert_eq!(report.format_detected, SourceFormat::InventoryParquet);
    assert_eq!(report.malformed, 0, "{report:?}");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].record.tenant, "b1");
    assert_eq!(rows[0].record.modified, Some(1_700_000_000));
    assert!(rows[0].record.legal_hold);
    assert_eq!(rows[0].record.storage_class, StorageClass::StandardIa);
    assert_eq!(rows[1].record.size, None);
}

#[test]
fn s3_inventory_manifest_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("inventory/src-bucket/cfg");
    let data = root.join("data");
    let stamp = root.join("2024-05-12T01-00Z");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&stamp).unwrap();
    let csv = "\"src-bucket\",\"img/a%20b.jpg\",\"1024\",\"2024-01-01T00:00:00.000Z\",\"STANDARD\",\"\",\"OFF\"\n\
\"src-bucket\",\"img/c+d.jpg\",\"2048\",\"2024-02-01T00:00:00.000Z\",\"GLACIER\",\"2030-01-01T00:00:00.000Z\",\"ON\"\n\
\"src-bucket\",\"img/e.jpg\",\"oops\",\"2024-02-01T00:00:00.000Z\",\"STANDARD\",\"\",\"OFF\"\n";
    write_gz(&data, "0001.csv.gz", csv);
    write_gz(&stamp, "0002.csv.gz", csv); // found by base name next to the manifest
    let manifest = r#"{
  "sourceBucket": "src-bucket",
  "destinationBucket": "arn:aws:s3:::dest",
  "version": "2016-11-30",
  "fileFormat": "CSV",
  "fileSchema": "Bucket, Key, Size, LastModifiedDate, StorageClass, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus",
  "files": [
    {"key": "inventory/src-bucket/cfg/data/0001.csv.gz", "size": 100, "MD5checksum": "x"},
    {"key": "elsewhere/0002.csv.gz", "size": 100, "MD5checksum": "y"}
  ]
}"#;
    let m = write(&stamp, "manifest.json", manifest);
    let (rows, report) = read_inventory(&m, &InventoryOptions::default()).unwrap();
    assert_eq!(report.format_detected, SourceFormat::S3InventoryCsv);
    assert_eq!((report.lines, report.events, report.malformed), (6, 4, 2));
    assert!(report.first_malformed[0].1.contains("0001.csv.gz"), "{report:?}");
    assert_eq!(rows[0].record.key, "img/a b.jpg");
    assert_eq!(rows[0].record.tenant, "src-bucket");
    assert_eq!(rows[0].record.modified, Some(1_704_067_200));
    assert_eq!(rows[1].record.key, "img/c d.jpg");
    assert!(rows[1].record.legal_hold);
    assert_eq!(rows[1].record.retain_until, Some(1_893_456_000));
    assert_eq!(rows[1].record.storage_class, StorageClass::Glacier);

    // a manifest naming a missing file is an I/O error naming it
    let broken = write(&stamp, "manifest.json", &manifest.replace("0001.csv.gz", "9999.csv.gz"));
    let err = read_inventory(&broken, &InventoryOptions::default()).unwrap_err();
    assert!(err.to_string().contains("9999.csv.gz"), "{err}");

    // Parquet flavour
    let pq_dir = dir.path().join("pq");
    std::fs::create_dir_all(&pq_dir).unwrap();
    let lm = Series::new("last_modified_date".into(), [1_704_067_200_000i64, 1_704_067_200_000])
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    let mut df = DataFrame::new(
        2,
        vec![
            Series::new("bucket".into(), ["src", "src"]).into(),
            Series::new("key".into(), ["a b.jpg", "old.jpg"]).into(),
            Series::new("size".into(), [10i64, 20]).into(),
            lm.into(),
            Series::new("storage_class".into(), ["STANDARD", "DEEP_ARCHIVE"]).into(),
            Series::new("object_lock_legal_hold_status".into(), ["OFF", "ON"]).into(),
            Series::new("is_delete_marker".into(), [false, true]).into(),
        ],
    )
    .unwrap();
    write_parquet(&pq_dir, "part-0.parquet", &mut df);
    let m = write(
        &pq_dir,
        "manifest.json",
        r#"{"fileFormat": "Parquet", "files": [{"key": "dest/src/cfg/data/part-0.parquet"}]}"#,
    );
    let (rows, report) = read_inventory(&m, &InventoryOptions::default()).unwrap();
    assert_eq!(report.format_detected, SourceFormat::S3InventoryParquet);
    assert_eq!(
        (report.lines, report.events, report.ignored, report.malformed),
        (2, 1, 1, 0)
    );
    assert_eq!(rows[0].record.key, "a b.jpg");
    assert_eq!(rows[0].record.modified, Some(1_704_067_200));
}
