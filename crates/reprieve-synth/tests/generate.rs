//! End-to-end tests of the generator on real files.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use reprieve_synth::{OutputFormat, SynthConfig, SynthError, generate};

const DAY: i64 = 86_400;

#[derive(Debug, Clone)]
struct Inv {
    tenant: String,
    key: String,
    created: i64,
    cohort: String,
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn read_inventory(dir: &Path) -> Vec<Inv> {
    let lines = read_lines(&dir.join("inventory.csv"));
    assert_eq!(
        lines[0],
        "tenant,key,size,created,modified,storage_class,owner,legal_hold,retain_until,live_references,content_type,cohort"
    );
    lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 12, "{l}");
            assert!(f[2].parse::<u64>().unwrap() > 0);
            assert!(matches!(f[7], "true" | "false"));
            assert!(f[8].is_empty() || f[8].parse::<i64>().is_ok());
            assert!(f[3].parse::<i64>().unwrap() <= f[4].parse::<i64>().unwrap());
            Inv {
                tenant: f[0].to_owned(),
                key: f[1].to_owned(),
                created: f[3].parse().unwrap(),
                cohort: f[11].to_owned(),
            }
        })
        .collect()
}

/// (ts, tenant, key)
fn read_events(dir: &Path) -> Vec<(i64, String, String)> {
    let lines = read_lines(&dir.join("events.csv"));
    assert_eq!(lines[0], "ts,key,size,tenant,op");
    lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            assert_eq!(f[4], "GET");
            (f[0].parse().unwrap(), f[3].to_owned(), f[1].to_owned())
        })
        .collect()
}

fn small() -> SynthConfig {
    SynthConfig {
        objects: 4_000,
        ..SynthConfig::default()
    }
}

#[test]
fn same_config_gives_identical_files() {
    for format in [OutputFormat::Csv, OutputFormat::Parquet] {
        let config = SynthConfig {
            format,
            objects: 3_000,
            ..SynthConfig::default()
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = generate(&config, a.path()).unwrap();
        let sb = generate(&config, b.path()).unwrap();
        assert_eq!(sa.events, sb.events);
        assert_eq!(sa.files.len(), 3);
        for (fa, fb) in sa.files.iter().zip(&sb.files) {
            assert_eq!(fa.file_name(), fb.file_name());
            assert_eq!(
                std::fs::read(fa).unwrap(),
                std::fs::read(fb).unwrap(),
                "{}",
                fa.display()
            );
        }
        let other = SynthConfig {
            seed: 7,
            ..config.clone()
        };
        let c = tempfile::tempdir().unwrap();
        let sc = generate(&other, c.path()).unwrap();
        assert_ne!(
            std::fs::read(&sa.files[1]).unwrap(),
            std::fs::read(&sc.files[1]).unwrap(),
            "another seed gives another log"
        );
    }
}

#[test]
fn events_are_sorted_in_window_after_creation_and_in_inventory() {
    let config = small();
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&config, dir.path()).unwrap();
    let inv = read_inventory(dir.path());
    let events = read_events(dir.path());
    assert_eq!(inv.len() as u64, summary.objects);
    assert_eq!(events.len() as u64, summary.events);
    assert!(summary.events > 1_000, "{summary:?}");
    assert_eq!(summary.start, config.start);
    assert_eq!(summary.end, config.start + 60 * DAY);

    let mut by_key: HashMap<(String, String), &Inv> = HashMap::new();
    for o in &inv {
        assert!(
            by_key.insert((o.tenant.clone(), o.key.clone()), o).is_none(),
            "duplicate key {}",
            o.key
        );
        assert_eq!(o.key.matches('/').count(), 2, "{}", o.key);
    }
    let mut previous = i64::MIN;
    for (ts, tenant, key) in &events {
        assert!(*ts >= previous, "events not sorted");
        previous = *ts;
        assert!(*ts >= summary.start && *ts < summary.end);
        let o = by_key
            .get(&(tenant.clone(), key.clone()))
            .unwrap_or_else(|| panic!("event key {tenant}/{key} not in inventory"));
        assert!(*ts >= o.created, "read of {key} at {ts} before creation {}", o.created);
    }

    // Summary matches the files.
    let mut per_cohort: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for o in &inv {
        per_cohort.entry(o.cohort.clone()).or_default().0 += 1;
    }
    for (_, tenant, key) in &events {
        per_cohort
            .entry(by_key[&(tenant.clone(), key.clone())].cohort.clone())
            .or_default()
            .1 += 1;
    }
    for (cohort, (objects, evs)) in &per_cohort {
        let s = &summary.by_cohort[cohort];
        assert_eq!((s.objects, s.events), (*objects, *evs), "{cohort}");
    }
    assert_eq!(summary.by_cohort["dead"].events, 0, "dead objects are never read");
    assert_eq!(summary.by_cohort["dead"].objects, 1_000);
    assert!(summary.by_cohort["popular"].events > 0);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("synth.json")).unwrap()).unwrap();
    assert_eq!(json["config"]["objects"], 4_000);
    assert_eq!(json["summary"]["events"], summary.events);
}

#[test]
fn new_uploads_only_are_read_after_creation() {
    let config = SynthConfig {
        objects: 2_000,
        share_new_uploads: 1.0,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    generate(&config, dir.path()).unwrap();
    let inv = read_inventory(dir.path());
    let created: HashMap<String, i64> = inv.iter().map(|o| (o.key.clone(), o.created)).collect();
    assert!(inv.iter().all(|o| o.created >= config.start));
    let events = read_events(dir.path());
    assert!(!events.is_empty());
    for (ts, _, key) in events {
        assert!(ts >= created[&key]);
    }
}

#[test]
fn monthly_and_rescan_cohorts_behave() {
    let config = SynthConfig {
        objects: 3_000,
        days: 120,
        share_new_uploads: 0.0,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    generate(&config, dir.path()).unwrap();
    let inv = read_inventory(dir.path());
    let events = read_events(dir.path());
    let cohort: HashMap<&str, &str> = inv.iter().map(|o| (o.key.as_str(), o.cohort.as_str())).collect();
    let mut reads: HashMap<&str, Vec<i64>> = HashMap::new();
    for (ts, _, key) in &events {
        reads.entry(key.as_str()).or_default().push(*ts);
    }

    // Monthly: reads come in bursts (< 3 h) whose starts are 30 days apart.
    let mut monthly_checked = 0;
    for o in inv.iter().filter(|o| o.cohort == "monthly") {
        let ts = &reads[o.key.as_str()];
        let mut bursts: Vec<i64> = Vec::new();
        for &t in ts {
            if bursts.last().is_none_or(|&b| t - b > 3 * 3_600) {
                bursts.push(t);
            }
        }
        assert!(bursts.len() >= 3, "{}: {ts:?}", o.key);
        for w in bursts.windows(2) {
            let gap = w[1] - w[0];
            assert!((gap - 30 * DAY).abs() <= 3 * 3_600, "{}: gap {gap}", o.key);
        }
        monthly_checked += 1;
    }
    assert_eq!(monthly_checked, 150);

    // Weekly objects are read every week.
    for o in inv.iter().filter(|o| o.cohort == "weekly") {
        assert!(reads[o.key.as_str()].len() >= 17, "{}", o.key);
    }

    // Rescan: each rescan sub-prefix holds only rescan objects and has days on which most of them are read.
    let prefix = |k: &str| k.rsplit_once('/').unwrap().0.to_owned();
    let mut members: HashMap<String, HashSet<&str>> = HashMap::new();
    for o in &inv {
        members.entry(prefix(&o.key)).or_default().insert(o.cohort.as_str());
    }
    let rescan_prefixes: HashSet<String> = inv
        .iter()
        .filter(|o| o.cohort == "rescan")
        .map(|o| prefix(&o.key))
        .collect();
    assert!(rescan_prefixes.len() >= 2);
    for p in &rescan_prefixes {
        assert_eq!(members[p].len(), 1, "{p} mixes cohorts: {:?}", members[p]);
        let size = inv.iter().filter(|o| prefix(&o.key) == *p).count();
        let mut per_day: HashMap<i64, HashSet<&str>> = HashMap::new();
        for (ts, _, key) in &events {
            if prefix(key) == *p {
                per_day
                    .entry((ts - config.start) / DAY)
                    .or_default()
                    .insert(key.as_str());
            }
        }
        let scan_days = per_day.values().filter(|keys| keys.len() * 2 > size).count();
        assert!(scan_days >= 4, "{p}: {scan_days} scan days in 120");
        assert!(per_day.len() <= 2 * scan_days, "{p}: reads outside scans");
    }

    // Dead objects and objects that are not `popular`/`weekly` are mostly unread.
    for o in inv.iter().filter(|o| o.cohort == "dead") {
        assert!(!reads.contains_key(o.key.as_str()));
    }
    for (key, ts) in &reads {
        if cohort[key] == "one_off" {
            assert!(ts.len() <= 15);
        }
    }
}

#[test]
fn names_follow_the_cohort_only_with_name_signal() {
    let flagged = |signal: f64| {
        let config = SynthConfig {
            objects: 4_000,
            name_signal: signal,
            ..SynthConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        generate(&config, dir.path()).unwrap();
        let inv = read_inventory(dir.path());
        let rate = |cohort: &str| {
            let objs: Vec<_> = inv.iter().filter(|o| o.cohort == cohort).collect();
            let hits = objs
                .iter()
                .filter(|o| {
                    let s = reprieve_core::naming::name_signals(&o.key, None);
                    s.temp
                        || s.old
                        || s.size_suffix
                        || s.hash_like
                        || (s.backup && !o.key.contains("backups") && !o.key.contains("dumps"))
                })
                .count();
            hits as f64 / objs.len() as f64
        };
        (rate("dead"), rate("popular"))
    };
    let (dead, popular) = flagged(1.0);
    assert!(dead > 0.8 && popular < 0.2, "{dead} {popular}");
    let (dead, popular) = flagged(0.0);
    assert!((dead - popular).abs() < 0.06, "{dead} {popular}");
}

#[test]
fn bad_config_names_the_knob() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(SynthConfig, &str)> = vec![
        (
            SynthConfig {
                objects: 0,
                ..SynthConfig::default()
            },
            "objects",
        ),
        (
            SynthConfig {
                days: 0,
                ..SynthConfig::default()
            },
            "days",
        ),
        (
            SynthConfig {
                tenants: 0,
                ..SynthConfig::default()
            },
            "tenants",
        ),
        (
            SynthConfig {
                prefixes: Some(0),
                ..SynthConfig::default()
            },
            "prefixes",
        ),
        (
            SynthConfig {
                share_dead: 1.5,
                ..SynthConfig::default()
            },
            "share_dead",
        ),
        (
            SynthConfig {
                share_one_off: -0.1,
                ..SynthConfig::default()
            },
            "share_one_off",
        ),
        (
            SynthConfig {
                name_signal: f64::NAN,
                ..SynthConfig::default()
            },
            "name_signal",
        ),
        (
            SynthConfig {
                zipf_exponent: -1.0,
                ..SynthConfig::default()
            },
            "zipf_exponent",
        ),
        (
            SynthConfig {
                decay_half_life_days: 0.0,
                ..SynthConfig::default()
            },
            "decay_half_life_days",
        ),
        (
            SynthConfig {
                rescan_interval_days: 0.5,
                ..SynthConfig::default()
            },
            "rescan_interval_days",
        ),
        (
            SynthConfig {
                start: 1_767_225_600_000,
                ..SynthConfig::default()
            },
            "start",
        ),
        (
            SynthConfig {
                share_unknown_owner: 2.0,
                ..SynthConfig::default()
            },
            "share_unknown_owner",
        ),
    ];
    for (config, knob) in cases {
        let err = generate(&config, dir.path()).unwrap_err();
        assert_eq!(err.knob(), Some(knob), "{err}");
        assert!(err.to_string().contains(knob), "{err}");
    }
    let config = SynthConfig {
        share_dead: 0.6,
        share_one_off: 0.6,
        ..SynthConfig::default()
    };
    let err = generate(&config, dir.path()).unwrap_err();
    assert!(err.to_string().contains("share_dead"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = generate(&small(), &file.join("out")).unwrap_err();
    assert!(matches!(err, SynthError::Io { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn parquet_reads_back_with_the_same_rows() {
    use polars::prelude::*;
    let config = SynthConfig {
        objects: 3_000,
        format: OutputFormat::Parquet,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&config, dir.path()).unwrap();
    let read = |name: &str| {
        let f = std::fs::File::open(dir.path().join(name)).unwrap();
        ParquetReader::new(f).finish().unwrap()
    };
    let inv = read("inventory.parquet");
    let events = read("events.parquet");
    assert_eq!(inv.height() as u64, summary.objects);
    assert_eq!(events.height() as u64, summary.events);
    let names: Vec<String> = events.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["ts", "key", "size", "tenant", "op"]);
    let names: Vec<String> = inv.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(
        names,
        [
            "tenant",
            "key",
            "size",
            "created",
            "modified",
            "storage_class",
            "owner",
            "legal_hold",
            "retain_until",
            "live_references",
            "content_type",
            "cohort"
        ]
    );

    // Same content as the CSV of the same config.
    let csv_dir = tempfile::tempdir().unwrap();
    let csv_summary = generate(
        &SynthConfig {
            format: OutputFormat::Csv,
            ..config.clone()
        },
        csv_dir.path(),
    )
    .unwrap();
    assert_eq!(csv_summary.events, summary.events);
    let csv_events = read_events(csv_dir.path());
    let ts = events.column("ts").unwrap().i64().unwrap();
    let key = events.column("key").unwrap().str().unwrap();
    for (i, (t, _, k)) in csv_events.iter().enumerate().step_by(97) {
        assert_eq!(ts.get(i), Some(*t));
        assert_eq!(key.get(i), Some(k.as_str()));
    }
}

/// The 1M-object floor: `cargo test -p reprieve-synth --release -- --ignored million --nocapture`.
#[test]
#[ignore]
fn million_objects() {
    let config = SynthConfig {
        objects: 1_000_000,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let summary = generate(&config, dir.path()).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "1M objects: {} events in {secs:.1}s ({:.0} objects/s, {:.0} events/s)",
        summary.events,
        summary.objects as f64 / secs,
        summary.events as f64 / secs
    );
}

#[test]
fn yearly_objects_are_read_only_in_their_season() {
    // The default window (2026-01-01 .. 2026-03-02) holds the tail of `newyear` (Dec 26 + 12 days) and `valentines`
    // (Feb 1 + 14 days).
    let config = SynthConfig {
        objects: 4_000,
        share_yearly: 0.3,
        name_signal: 1.0,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    generate(&config, dir.path()).unwrap();
    let inv = read_inventory(dir.path());
    let yearly: HashSet<&str> = inv
        .iter()
        .filter(|o| o.cohort == "yearly")
        .map(|o| o.key.as_str())
        .collect();
    let newyear_end = config.start + 7 * DAY; // 2026-01-07
    let valentines = (config.start + 31 * DAY, config.start + 45 * DAY); // 2026-02-01 .. 2026-02-15
    let mut read = HashSet::new();
    for (ts, _, key) in read_events(dir.path()) {
        if yearly.contains(key.as_str()) {
            let in_season = ts < newyear_end || (valentines.0..valentines.1).contains(&ts);
            assert!(in_season, "{key} read at {ts}, outside its season");
            assert!(
                key.contains("newyear") || key.contains("valentines") || !key.contains("christmas"),
                "{key}"
            );
            read.insert(key);
        }
    }
    assert!(!read.is_empty());
    assert!(
        read.len() < yearly.len() / 2,
        "most seasonal objects are silent in a 60-day log"
    );
}

#[test]
fn edge_configs_work() {
    for config in [
        SynthConfig {
            objects: 1,
            days: 1,
            tenants: 1,
            prefixes: Some(1),
            ..SynthConfig::default()
        },
        SynthConfig {
            objects: 500,
            tenants: 20,
            prefixes: Some(600),
            share_one_off: 0.0,
            share_dead: 0.0,
            share_monthly: 0.0,
            share_weekly: 0.0,
            share_yearly: 0.0,
            share_rescan: 1.0,
            ..SynthConfig::default()
        },
        SynthConfig {
            objects: 500,
            share_dead: 0.6,
            mean_reads_per_day: 0.0,
            name_signal: 0.0,
            ..SynthConfig::default()
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(&config, dir.path()).unwrap();
        assert_eq!(summary.objects, config.objects);
        assert_eq!(read_inventory(dir.path()).len() as u64, config.objects);
        assert_eq!(read_events(dir.path()).len() as u64, summary.events);
        if config.mean_reads_per_day == 0.0 {
            assert_eq!(summary.by_cohort["popular"].events, 0);
        }
    }
}
