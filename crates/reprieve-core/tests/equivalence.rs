//! The faster core against the code it replaced (`tests/reference/`): name signals, history aggregation (the
//! sorted fast path of the server and the one-read-at-a-time path of the batch scorer) and whole feature vectors
//! must be the same, bit for bit, over many random inputs.

mod reference;

use proptest::prelude::*;
use reprieve_core::features::{extract, extract_image_with_stats};
use reprieve_core::naming::{name_signals, tag_shape};
use reprieve_core::{
    AccessSummary, HistoryStats, ImageFacts, ObjectRecord, PrefixActivity, ScheduleFacts, StorageClass,
};

const DAY: i64 = 86_400;
const AT: i64 = 1_772_409_600;

/// Pieces names are made of: words of every list, near misses, dates, versions, sizes, hashes, odd bytes.
const PIECES: &[&str] = &[
    "tmp",
    "TEMP",
    "Backup",
    "bak",
    "old",
    "Legacy",
    "thumb",
    "thumbnails",
    "tn",
    "latest",
    "MAIN",
    "prod",
    "xmas",
    "Christmas",
    "black",
    "friday",
    "blackfriday",
    "holiday",
    "valentines",
    "newyear",
    "backtoschool",
    "thanksgiving",
    "fall",
    "eid",
    "season",
    "2019",
    "1989",
    "2100",
    "20190501",
    "2019-05-01",
    "2019.13.01",
    "2019_05_32",
    "19900101",
    "v1.2.3",
    "1.2",
    "V2.0.0-rc1",
    "1.2.3.4.5",
    "1234567.1",
    "v1",
    "300x200",
    "300X200",
    "@2x",
    "3x",
    "1024w",
    "w",
    "123456x1",
    "0123456789abcdef",
    "0123456789ABCDEF0123",
    "deadbeefdeadbeefdeadbeef",
    "a1b2c3d4e5f6a7b8c9d0e1f2g3",
    "IMG",
    "banner",
    "snapshot",
    "copy",
    "draft",
    "production",
    "previous",
    "ünï",
    "路径",
    "",
    "x",
    "@",
    "@@latest",
];
const SEPARATORS: &[&str] = &[
    "/",
    "//",
    "_",
    "-",
    ".",
    " ",
    "+",
    "=",
    ",",
    "(",
    ")",
    ":",
    "@",
    "@sha256:",
    ".tar.gz",
    ".png",
    ".JPG",
    ".safetensors",
    ".averyverylongext",
    ":latest",
    ":v1.2.3",
];

fn key() -> impl Strategy<Value = String> {
    let structured = proptest::collection::vec(
        (proptest::sample::select(PIECES), proptest::sample::select(SEPARATORS)),
        0..10,
    )
    .prop_map(|parts| parts.into_iter().map(|(p, s)| format!("{p}{s}")).collect::<String>());
    let random = "[a-zA-Z0-9_./@: +=,()ü-]{0,60}";
    let long = "[a-z0-9/._-]{250,300}";
    prop_oneof![6 => structured, 3 => random, 1 => long]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("image/png".to_string()),
        Just(" Application/JSON; charset=utf-8".to_string()),
        Just("application/vnd.oci.image.manifest.v1+json".to_string()),
        "[a-zA-Z/;+. -]{0,30}",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn name_signals_are_unchanged(key in key(), ct in content_type()) {
        prop_assert_eq!(name_signals(&key, ct.as_deref()), reference::naming::name_signals(&key, ct.as_deref()));
    }

    #[test]
    fn tag_shapes_are_unchanged(tag in key()) {
        prop_assert_eq!(tag_shape(&tag), reference::naming::tag_shape(&tag));
    }
}

/// Read times: bursts, weekly and monthly patterns, uniform over three years, a few in the future.
fn reads() -> impl Strategy<Value = Vec<i64>> {
    let near = prop_oneof![
        4 => AT - 3 * 365 * DAY..AT,
        2 => AT - 40 * DAY..AT,
        1 => AT - 20 * 365 * DAY..AT + 10 * DAY,
        1 => Just(AT - 1),
        1 => Just(AT),
    ];
    prop_oneof![
        3 => proptest::collection::vec(near, 0..300),
        1 => (AT - 400 * DAY..AT, 1i64..40 * DAY, 1usize..120)
            .prop_map(|(start, step, n)| (0..n as i64).map(|i| start + i * step).collect()),
        1 => (AT - 30 * DAY..AT, 0i64..5, 1usize..50).prop_map(|(t, step, n)| vec![t; n].iter().enumerate().map(|(i, t)| t - step * i as i64).collect()),
    ]
}

fn summary() -> impl Strategy<Value = Option<AccessSummary>> {
    proptest::option::of(
        (
            0u64..10_000,
            proptest::option::of(AT - 900 * DAY..AT + DAY),
            proptest::option::of(AT - 900 * DAY..AT + DAY),
        )
            .prop_map(|(count, first, last)| AccessSummary { count, first, last }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn history_stats_are_unchanged(reads in reads(), summary in summary(), shuffle in any::<u64>()) {
        let mut history = reprieve_core::AccessHistory { accesses: reads, summary, complete_since: None };
        // Unsorted, as given (the one-read-at-a-time path).
        let expected = reference::history::from_history(&history, AT);
        prop_assert_eq!(HistoryStats::from_history(&history, AT), expected);
        // The batch scorer's way: every read observed in any order, the summary last.
        let mut streamed = HistoryStats::new(AT);
        let mut order = history.accesses.clone();
        let n = order.len();
        for i in 0..n {
            order.swap(i, (shuffle.wrapping_mul(i as u64 + 1) % n as u64) as usize);
        }
        order.iter().for_each(|&t| streamed.observe(t));
        if let Some(s) = history.summary {
            streamed.observe_summary(s.count, s.first, s.last);
        }
        prop_assert_eq!(streamed, expected);
        // Sorted, as the server validates them (the fast path).
        history.accesses.sort_unstable();
        prop_assert_eq!(HistoryStats::from_history(&history, AT), reference::history::from_history(&history, AT));
    }
}

#[test]
fn every_decay_term_is_the_definition_bit_for_bit() {
    // A seeded stream for the exhaustive-ish loop below.
    let mut rng = proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha);
    let check = |age: i64| {
        let mut s = HistoryStats::new(AT);
        s.observe(AT - age);
        let expected: [u64; 4] = std::array::from_fn(|h| reference::history::decay_term(h, age));
        assert_eq!(s.decayed_fixed, expected, "age {age}");
    };
    // Every second of the first two days, every day boundary +-2 s for 20 years, then random ages at every scale.
    for age in 1..2 * DAY {
        check(age);
    }
    for day in 1..20 * 365 {
        for d in -2..=2 {
            check(day * DAY + d);
        }
    }
    for _ in 0..1_000_000 {
        let scale = 1 + rng.next_u64() % 30;
        check(1 + (rng.next_u64() % (1u64 << scale)) as i64);
    }
}

fn activity() -> impl Strategy<Value = Option<PrefixActivity>> {
    proptest::option::of(
        (
            0u64..3_000,
            0u64..3_000,
            0u64..5_000,
            proptest::option::of(AT - 400 * DAY..AT + DAY),
            0u32..=128,
            proptest::option::of(AT - 400 * DAY..AT + DAY),
        )
            .prop_map(|(objects, read, reads, last_read, bulk, last_bulk)| PrefixActivity {
                objects,
                objects_read_30d: read.min(objects),
                reads_7d: reads / 3,
                reads_30d: reads,
                last_read,
                bulk_scan_days_128d: bulk,
                last_bulk_scan: last_bulk,
            }),
    )
}

fn maybe_time() -> impl Strategy<Value = Option<i64>> {
    proptest::option::of(prop_oneof![
        AT - 3 * 365 * DAY..AT + 2 * DAY,
        Just(AT),
        (AT - 1000 * DAY..AT).prop_map(|t| t - t % DAY)
    ])
}

prop_compose! {
    fn record()(
        key in key(),
        content_type in content_type(),
        size in proptest::option::of(prop_oneof![Just(0u64), 0u64..2_000, any::<u64>()]),
        created in maybe_time(),
        modified in maybe_time(),
        complete_since in maybe_time(),
        reads in reads(),
        summary in summary(),
        parent in activity(),
        top in activity(),
        class in 0usize..9,
    ) -> ObjectRecord {
        let mut r = ObjectRecord::with_key(key);
        r.content_type = content_type;
        r.size = size;
        r.created = created;
        r.modified = modified;
        r.history.accesses = reads;
        r.history.accesses.sort_unstable();
        r.history.summary = summary;
        r.history.complete_since = complete_since;
        r.parent_activity = parent;
        r.top_activity = top;
        r.storage_class = [
            StorageClass::Unspecified, StorageClass::Standard, StorageClass::IntelligentTiering,
            StorageClass::StandardIa, StorageClass::OnezoneIa, StorageClass::GlacierIr, StorageClass::Glacier,
            StorageClass::DeepArchive, StorageClass::Other,
        ][class];
        r
    }
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn feature_vectors_are_unchanged(r in record(), at_offset in prop_oneof![Just(0i64), -400 * DAY..DAY]) {
        let at = AT + at_offset;
        let v = extract(&r, at);
        prop_assert_eq!(bits(v.values()), bits(&reference::features::extract(&r, at).0));
    }

    #[test]
    fn image_feature_vectors_are_unchanged(
        r in record(),
        tags in proptest::collection::vec(key(), 0..4),
        pulls in (0u64..1_000, 0u64..1_000),
        schedule in proptest::option::of((AT..AT + 40 * DAY, 1i64..60 * DAY)),
    ) {
        let image = ImageFacts {
            tags,
            newest_tag_at: Some(AT - 3 * DAY),
            pulls_by_tag: pulls.0,
            pulls_by_digest: pulls.1,
            is_index: pulls.0 % 2 == 0,
            schedule: schedule.map(|(next_run, period_secs)| ScheduleFacts { next_run, period_secs }),
        };
        let stats = HistoryStats::from_history(&r.history, AT);
        let v = extract_image_with_stats(&r, &stats, Some(&image));
        let expected = reference::features::extract_image_with_stats(&r, &stats, Some(&image));
        prop_assert_eq!(bits(v.values()), bits(&expected.0));
    }
}
