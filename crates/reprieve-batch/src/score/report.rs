//! The run's report: what was scored, the unused-storage metrics (M1-M3), what could be reclaimed, what the
//! hard rules held back and what the readers found. The same numbers go to Markdown and JSON.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use reprieve_core::prefix::top_prefix;
use reprieve_core::time::format_rfc3339;
use reprieve_core::{HistoryStats, ObjectRecord, ReasonCode, StorageClass, UnixSeconds, Verdict, VerdictClass};
use serde::{Deserialize, Serialize};

use super::aggregate::UnknownReads;
use super::prices::{PriceTable, label};
use crate::formats::ReadReport;

/// How many prefixes and owners the report lists.
pub const TOP_RECLAIMABLE: usize = 10;

/// The hard rules whose held-back objects the report counts.
pub const HELD_BACK_REASONS: [ReasonCode; 6] = [
    ReasonCode::LegalHold,
    ReasonCode::RetentionActive,
    ReasonCode::LiveReference,
    ReasonCode::TooNew,
    ReasonCode::InsufficientHistory,
    ReasonCode::UnknownOwner,
];

/// Objects and bytes of one verdict class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassTotals {
    pub class: VerdictClass,
    pub objects: u64,
    pub bytes: u64,
}

/// One storage class's share of the unused storage and its monthly cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageClassCost {
    /// `standard`, `standard_ia`, ... (the price table's keys).
    pub storage_class: String,
    pub objects: u64,
    pub bytes: u64,
    pub unused_objects: u64,
    pub unused_bytes: u64,
    pub usd_per_gb_month: f64,
    /// M3 for this class: unused bytes (GiB) x price.
    pub unused_monthly_usd: f64,
}

/// M1-M3 over the observation window `[window_start, window_end)`. An object is unused when it has no logged
/// read in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnusedMetrics {
    /// The start of complete history; `None` when unknown (then every object without a read is unused).
    pub window_start: Option<UnixSeconds>,
    /// The scoring time.
    pub window_end: UnixSeconds,
    /// M1: unused bytes / total bytes (0 when there are no bytes).
    pub m1_unused_storage_ratio: f64,
    /// M2: objects with no read in the window.
    pub m2_unused_objects: u64,
    pub unused_bytes: u64,
    /// M3: monthly cost of the unused bytes, in USD, summed over storage classes.
    pub m3_monthly_cost_usd: f64,
    /// Storage classes with at least one object, in price-table order.
    pub by_storage_class: Vec<StorageClassCost>,
}

/// Reclaimable (ARCHIVE + DELETE_CANDIDATE) objects and bytes of one top-level prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixReclaim {
    pub tenant: String,
    /// Top-level prefix with its trailing slash; empty for keys at the root.
    pub prefix: String,
    pub objects: u64,
    pub bytes: u64,
}

/// Reclaimable (ARCHIVE + DELETE_CANDIDATE) objects and bytes of one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerReclaim {
    /// The owner; empty for objects without one.
    pub owner: String,
    pub objects: u64,
    pub bytes: u64,
}

/// Objects (and their bytes) that a hard rule held back; an object held by several rules counts under each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    pub reason: ReasonCode,
    pub objects: u64,
    pub bytes: u64,
}

/// Files the run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outputs {
    pub scores: PathBuf,
    pub report_md: Option<PathBuf>,
    pub report_json: Option<PathBuf>,
}

/// What a scoring run did and found; `report.json` is this value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// The scoring time.
    pub at: UnixSeconds,
    pub model_version: String,
    /// `(i, N)` when the run scored shard `i` of `N`.
    pub shard: Option<(u32, u32)>,
    /// Start of complete history used for every object (see [`super::ScoreJob::history_complete_since`]).
    pub history_complete_since: Option<UnixSeconds>,
    /// Distinct objects in the whole inventory (all shards).
    pub inventory_objects: u64,
    /// Inventory rows that repeat an earlier (tenant, key); the first is kept.
    pub duplicate_inventory_rows: u64,
    /// Objects scored (the shard's), one row each in the scores file.
    pub objects_scored: u64,
    /// Bytes of the scored objects.
    pub bytes: u64,
    /// Per verdict class, in `RETAIN`, `REVIEW`, `ARCHIVE`, `DELETE_CANDIDATE` order.
    pub by_class: Vec<ClassTotals>,
    /// Logged reads before `at` of the scored objects.
    pub reads_counted: u64,
    /// Logged reads at or after `at` (any key, all shards): ignored.
    pub reads_at_or_after: u64,
    /// Reads without a tenant whose key is in several inventory tenants: not attributed.
    pub reads_ambiguous_tenant: u64,
    /// Reads for keys not in the inventory: counted, never scored.
    pub unknown_reads: UnknownReads,
    pub unused: UnusedMetrics,
    /// Top [`TOP_RECLAIMABLE`] top-level prefixes by reclaimable bytes.
    pub top_prefixes: Vec<PrefixReclaim>,
    /// Top [`TOP_RECLAIMABLE`] owners by reclaimable bytes.
    pub top_owners: Vec<OwnerReclaim>,
    /// Per hard rule, in [`HELD_BACK_REASONS`] order.
    pub held_back: Vec<HeldBack>,
    /// The prices M3 used.
    pub prices: PriceTable,
    pub inventory_report: ReadReport,
    pub log_reports: Vec<ReadReport>,
    pub outputs: Outputs,
}

impl ScoreSummary {
    /// Objects and bytes of `class`.
    pub fn class(&self, class: VerdictClass) -> (u64, u64) {
        self.by_class
            .iter()
            .find(|c| c.class == class)
            .map_or((0, 0), |c| (c.objects, c.bytes))
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    objects: u64,
    bytes: u64,
}

impl Counts {
    fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }
}

/// Accumulates the report while the objects are scored.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    window_start: Option<UnixSeconds>,
    objects: Counts,
    reads: u64,
    by_class: [Counts; 4],
    by_storage: [(Counts, Counts); 9],
    prefixes: HashMap<(String, String), Counts>,
    owners: HashMap<String, Counts>,
    held: [Counts; 6],
}

fn storage_index(class: StorageClass) -> usize {
    PriceTable::CLASSES.iter().position(|&c| c == class).unwrap_or(8)
}

impl Tally {
    pub(crate) fn new(window_start: Option<UnixSeconds>) -> Self {
        Self {
            window_start,
            ..Self::default()
        }
    }

    /// Whether an object with these stats had no read in the window.
    pub(crate) fn unused(&self, stats: &HistoryStats) -> bool {
        match (stats.last, self.window_start) {
            (None, _) => true,
            (Some(last), Some(start)) => last < start,
            (Some(_), None) => false,
        }
    }

    pub(crate) fn add(&mut self, record: &ObjectRecord, stats: &HistoryStats, verdict: &Verdict) {
        let bytes = record.size.unwrap_or(0);
        self.objects.add(bytes);
        self.reads += stats.count;
        let class = VerdictClass::ALL.iter().position(|&c| c == verdict.class).unwrap_or(0);
        self.by_class[class].add(bytes);
        let is_unused = self.unused(stats);
        let (all, unused) = &mut self.by_storage[storage_index(record.storage_class)];
        all.add(bytes);
        if is_unused {
            unused.add(bytes);
        }
        if verdict.class.lets_go() {
            self.prefixes
                .entry((record.tenant.clone(), top_prefix(&record.key).to_owned()))
                .or_default()
                .add(bytes);
            self.owners
                .entry(record.owner.clone().unwrap_or_default())
                .or_default()
                .add(bytes);
        }
        for (i, reason) in HELD_BACK_REASONS.iter().enumerate() {
            if verdict.reasons.contains(reason) {
                self.held[i].add(bytes);
            }
        }
    }

    /// Adds the counts of another tally (of other objects, with the same window) to this one.
    pub(crate) fn merge(&mut self, other: Tally) {
        let add = |a: &mut Counts, b: Counts| {
            a.objects += b.objects;
            a.bytes += b.bytes;
        };
        add(&mut self.objects, other.objects);
        self.reads += other.reads;
        for (a, b) in self.by_class.iter_mut().zip(other.by_class) {
            add(a, b);
        }
        for ((all, unused), (b_all, b_unused)) in self.by_storage.iter_mut().zip(other.by_storage) {
            add(all, b_all);
            add(unused, b_unused);
        }
        for (key, c) in other.prefixes {
            add(self.prefixes.entry(key).or_default(), c);
        }
        for (key, c) in other.owners {
            add(self.owners.entry(key).or_default(), c);
        }
        for (a, b) in self.held.iter_mut().zip(other.held) {
            add(a, b);
        }
    }

    /// The report's numbers; the caller fills in the run's facts (`at`, reports, outputs...).
    pub(crate) fn finish(self, at: UnixSeconds, prices: &PriceTable) -> TallyResult {
        let by_class = VerdictClass::ALL
            .iter()
            .zip(self.by_class)
            .map(|(&class, c)| ClassTotals {
                class,
                objects: c.objects,
                bytes: c.bytes,
            })
            .collect();
        let by_storage_class: Vec<StorageClassCost> = PriceTable::CLASSES
            .iter()
            .zip(self.by_storage)
            .filter(|(_, (all, _))| all.objects > 0)
            .map(|(&class, (all, unused))| StorageClassCost {
                storage_class: label(class).to_owned(),
                objects: all.objects,
                bytes: all.bytes,
                unused_objects: unused.objects,
                unused_bytes: unused.bytes,
                usd_per_gb_month: prices.usd_per_gb_month(class),
                unused_monthly_usd: prices.monthly_cost(class, unused.bytes),
            })
            .collect();
        let unused_objects: u64 = by_storage_class.iter().map(|s| s.unused_objects).sum();
        let unused_bytes: u64 = by_storage_class.iter().map(|s| s.unused_bytes).sum();
        let unused = UnusedMetrics {
            window_start: self.window_start,
            window_end: at,
            m1_unused_storage_ratio: if self.objects.bytes == 0 {
                0.0
            } else {
                unused_bytes as f64 / self.objects.bytes as f64
            },
            m2_unused_objects: unused_objects,
            unused_bytes,
            m3_monthly_cost_usd: by_storage_class.iter().map(|s| s.unused_monthly_usd).sum(),
            by_storage_class,
        };
        let mut top_prefixes: Vec<PrefixReclaim> = self
            .prefixes
            .into_iter()
            .map(|((tenant, prefix), c)| PrefixReclaim {
                tenant,
                prefix,
                objects: c.objects,
                bytes: c.bytes,
            })
            .collect();
        top_prefixes.sort_unstable_by(|a, b| {
            (b.bytes, b.objects)
                .cmp(&(a.bytes, a.objects))
                .then_with(|| (&a.tenant, &a.prefix).cmp(&(&b.tenant, &b.prefix)))
        });
        top_prefixes.truncate(TOP_RECLAIMABLE);
        let mut top_owners: Vec<OwnerReclaim> = self
            .owners
            .into_iter()
            .map(|(owner, c)| OwnerReclaim {
                owner,
                objects: c.objects,
                bytes: c.bytes,
            })
            .collect();
        top_owners.sort_unstable_by(|a, b| {
            (b.bytes, b.objects)
                .cmp(&(a.bytes, a.objects))
                .then_with(|| a.owner.cmp(&b.owner))
        });
        top_owners.truncate(TOP_RECLAIMABLE);
        let held_back = HELD_BACK_REASONS
            .iter()
            .zip(self.held)
            .map(|(&reason, c)| HeldBack {
                reason,
                objects: c.objects,
                bytes: c.bytes,
            })
            .collect();
        TallyResult {
            objects_scored: self.objects.objects,
            bytes: self.objects.bytes,
            reads_counted: self.reads,
            by_class,
            unused,
            top_prefixes,
            top_owners,
            held_back,
        }
    }
}

/// The numbers a [`Tally`] gives.
#[derive(Debug)]
pub(crate) struct TallyResult {
    pub(crate) objects_scored: u64,
    pub(crate) bytes: u64,
    pub(crate) reads_counted: u64,
    pub(crate) by_class: Vec<ClassTotals>,
    pub(crate) unused: UnusedMetrics,
    pub(crate) top_prefixes: Vec<PrefixReclaim>,
    pub(crate) top_owners: Vec<OwnerReclaim>,
    pub(crate) held_back: Vec<HeldBack>,
}

/// `1234567` -> `1.18 MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

fn time(t: Option<UnixSeconds>) -> String {
    t.map_or_else(|| "unknown".to_owned(), |t| format!("{} ({t})", format_rfc3339(t)))
}

/// Escapes a table cell.
fn cell(text: &str) -> String {
    if text.is_empty() {
        return "(none)".to_owned();
    }
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Renders the Markdown report.
pub fn render_markdown(s: &ScoreSummary) -> String {
    let mut md = String::new();
    // Writing to a String cannot fail.
    let w = &mut md;
    let _ = writeln!(w, "# Reprieve scoring report\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| scored at | {} |", time(Some(s.at)));
    let _ = writeln!(w, "| model | `{}` |", s.model_version);
    if let Some((i, n)) = s.shard {
        let _ = writeln!(w, "| shard | {i}/{n} |");
    }
    let _ = writeln!(w, "| history complete since | {} |", time(s.history_complete_since));
    let _ = writeln!(w, "| objects in the inventory | {} |", s.inventory_objects);
    if s.duplicate_inventory_rows > 0 {
        let _ = writeln!(
            w,
            "| duplicate inventory rows (ignored) | {} |",
            s.duplicate_inventory_rows
        );
    }
    let _ = writeln!(w, "| objects scored | {} |", s.objects_scored);
    let _ = writeln!(w, "| bytes scored | {} ({}) |", s.bytes, human_bytes(s.bytes));
    let _ = writeln!(w, "| reads counted (before the scoring time) | {} |", s.reads_counted);
    let _ = writeln!(
        w,
        "| reads at or after the scoring time (ignored) | {} |",
        s.reads_at_or_after
    );
    let _ = writeln!(w, "| scores file | `{}` |", s.outputs.scores.display());

    let _ = writeln!(w, "\n## Verdicts\n");
    let _ = writeln!(
        w,
        "| class | objects | share | bytes | share |\n|---|---:|---:|---:|---:|"
    );
    for c in &s.by_class {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} ({}) | {} |",
            c.class.as_str(),
            c.objects,
            pct(c.objects, s.objects_scored),
            c.bytes,
            human_bytes(c.bytes),
            pct(c.bytes, s.bytes)
        );
    }

    let u = &s.unused;
    let _ = writeln!(w, "\n## Unused storage\n");
    let _ = writeln!(
        w,
        "Observation window: {} to {}. An object is unused when it has no logged read in the window.\n",
        time(u.window_start),
        time(Some(u.window_end))
    );
    let _ = writeln!(w, "| id | metric | value |\n|---|---|---:|");
    let _ = writeln!(
        w,
        "| M1 | unused storage ratio | {:.4} ({} of {}) |",
        u.m1_unused_storage_ratio,
        human_bytes(u.unused_bytes),
        human_bytes(s.bytes)
    );
    let _ = writeln!(
        w,
        "| M2 | unused object count | {} of {} |",
        u.m2_unused_objects, s.objects_scored
    );
    let _ = writeln!(
        w,
        "| M3 | monthly cost of unused storage | {:.2} USD |",
        u.m3_monthly_cost_usd
    );
    let _ = writeln!(
        w,
        "\n| storage class | objects | bytes | unused objects | unused bytes | USD per GB-month | unused USD per month |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for c in &u.by_storage_class {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} ({}) | {} | {:.2} |",
            c.storage_class,
            c.objects,
            c.bytes,
            c.unused_objects,
            c.unused_bytes,
            human_bytes(c.unused_bytes),
            c.usd_per_gb_month,
            c.unused_monthly_usd
        );
    }
    let _ = writeln!(
        w,
        "\nPrice table used (USD per GB-month, 1 GB = 2^30 bytes):\n\n| storage class | price |\n|---|---:|"
    );
    for class in PriceTable::CLASSES {
        let _ = writeln!(w, "| {} | {} |", label(class), s.prices.usd_per_gb_month(class));
    }

    let _ = writeln!(w, "\n## Reclaimable storage (ARCHIVE + DELETE_CANDIDATE)\n");
    let _ = writeln!(w, "Top {TOP_RECLAIMABLE} top-level prefixes:\n");
    let _ = writeln!(w, "| tenant | prefix | objects | bytes |\n|---|---|---:|---:|");
    for p in &s.top_prefixes {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} ({}) |",
            cell(&p.tenant),
            cell(&p.prefix),
            p.objects,
            p.bytes,
            human_bytes(p.bytes)
        );
    }
    let _ = writeln!(w, "\nTop {TOP_RECLAIMABLE} owners:\n");
    let _ = writeln!(w, "| owner | objects | bytes |\n|---|---:|---:|");
    for o in &s.top_owners {
        let _ = writeln!(
            w,
            "| {} | {} | {} ({}) |",
            cell(&o.owner),
            o.objects,
            o.bytes,
            human_bytes(o.bytes)
        );
    }

    let _ = writeln!(w, "\n## Held back by hard rules\n");
    let _ = writeln!(
        w,
        "An object held back by several rules counts under each.\n\n| reason | objects | bytes |\n|---|---:|---:|"
    );
    for h in &s.held_back {
        let _ = writeln!(
            w,
            "| {} | {} | {} ({}) |",
            h.reason.as_str(),
            h.objects,
            h.bytes,
            human_bytes(h.bytes)
        );
    }

    let _ = writeln!(w, "\n## Inputs\n");
    let _ = writeln!(
        w,
        "| file | format | lines | events/objects | ignored | malformed | first malformed lines |\n|---|---|---:|---:|---:|---:|---|"
    );
    // A run without an inventory file (container images from registry events alone) has an empty placeholder.
    let inventory = std::iter::once(&s.inventory_report).filter(|r| !r.path.as_os_str().is_empty());
    for r in inventory.chain(&s.log_reports) {
        let first: Vec<String> = r
            .first_malformed
            .iter()
            .map(|(line, reason)| format!("{line}: {}", cell(reason)))
            .collect();
        let _ = writeln!(
            w,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            r.path.display(),
            serde_json::to_value(r.format_detected)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            r.lines,
            r.events,
            r.ignored,
            r.malformed,
            if first.is_empty() {
                "-".to_owned()
            } else {
                first.join("; ")
            }
        );
    }

    let k = &s.unknown_reads;
    let _ = writeln!(w, "\n## Reads for keys not in the inventory (not scored)\n");
    let _ = writeln!(
        w,
        "{} reads of {}{} distinct keys.",
        k.reads,
        if k.distinct_keys_capped { "at least " } else { "" },
        k.distinct_keys
    );
    if s.reads_ambiguous_tenant > 0 {
        let _ = writeln!(
            w,
            "{} reads without a tenant matched a key present in several tenants and were not attributed.",
            s.reads_ambiguous_tenant
        );
    }
    if !k.top.is_empty() {
        let _ = writeln!(w, "\n| tenant | key | reads |\n|---|---|---:|");
        for t in &k.top {
            let _ = writeln!(w, "| {} | {} | {} |", cell(&t.tenant), cell(&t.key), t.reads);
        }
    }
    md
}
