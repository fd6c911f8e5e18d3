//! The evaluation protocol of DESIGN section 4: replay a trace at rolling cuts, train for each test cut only on
//! cuts whose label windows have closed, and compare the model's delete-candidates with recency rules and the
//! oracle at the same false-delete target.

use std::collections::BTreeMap;

use reprieve_core::UnixSeconds;
use reprieve_core::time::DAY;
use reprieve_model::artifact::Segment;
use reprieve_model::dataset::Cut;
use reprieve_model::metrics::{CalibrationBin, calibration_table};
use reprieve_model::stats::upper_95;
use reprieve_model::threshold::{Scored, select_threshold};
use reprieve_model::train::{ExtraRows, TrainConfig, train};
use reprieve_model::{Model, ModelError};
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::replay::Replay;

/// The methods compared, in report order.
pub const METHODS: [&str; 6] = [
    "model",
    "recency_calibrated",
    "recency_7d",
    "recency_30d",
    "recency_90d",
    "oracle",
];

/// How to replay a trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalConfig {
    pub horizon_secs: i64,
    pub step_secs: i64,
    /// First cut (default: one step after the log starts).
    pub from: Option<UnixSeconds>,
    /// Last cut (default: the last whose label window closes in the log).
    pub to: Option<UnixSeconds>,
    /// False-delete target of the delete-candidate class.
    pub target: f64,
    /// How many of the latest closed cuts calibrate (and pick thresholds) for each test cut.
    pub calibration_cuts: usize,
    pub train: TrainConfig,
    /// Adaptive conformal step (Gibbs and Candes, 2021; DESIGN section 4): once a test cut's label window has
    /// closed, the delete target the next models are trained for moves by `adaptive_gamma * (target - realized
    /// rate)`, within `[target / 10, target]`: it tightens after a cut over the target and relaxes back after cuts
    /// under it, never beyond the target. 0 keeps the target fixed.
    #[serde(default)]
    pub adaptive_gamma: f64,
}

/// The default adaptive conformal step of `reprieve evaluate`.
pub const DEFAULT_ADAPTIVE_GAMMA: f64 = 0.05;

/// Counts behind one method's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub objects: u64,
    pub flagged: u64,
    pub false_deletes: u64,
    pub unused_objects: u64,
    pub unused_bytes: u64,
    pub unused_objects_flagged: u64,
    pub unused_bytes_flagged: u64,
}

impl Tally {
    fn add(&mut self, flagged: bool, reused: bool, size: u64) {
        self.objects += 1;
        if !reused {
            self.unused_objects += 1;
            self.unused_bytes += size;
        }
        if flagged {
            self.flagged += 1;
            if reused {
                self.false_deletes += 1;
            } else {
                self.unused_objects_flagged += 1;
                self.unused_bytes_flagged += size;
            }
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.objects += o.objects;
        self.flagged += o.flagged;
        self.false_deletes += o.false_deletes;
        self.unused_objects += o.unused_objects;
        self.unused_bytes += o.unused_bytes;
        self.unused_objects_flagged += o.unused_objects_flagged;
        self.unused_bytes_flagged += o.unused_bytes_flagged;
    }

    pub fn figures(&self) -> Figures {
        let share = |num: u64, den: u64| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        Figures {
            flagged: self.flagged,
            false_deletes: self.false_deletes,
            false_delete_rate: share(self.false_deletes, self.flagged),
            false_delete_upper_95: upper_95(self.false_deletes, self.flagged),
            unused_bytes_found: share(self.unused_bytes_flagged, self.unused_bytes),
            unused_objects_found: share(self.unused_objects_flagged, self.unused_objects),
            objects: self.objects,
        }
    }
}

/// One method's figures over a population.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub flagged: u64,
    pub false_deletes: u64,
    /// Share of flagged objects that were read again within the horizon.
    pub false_delete_rate: f64,
    /// One-sided 95% Clopper-Pearson upper bound of that rate (1 when nothing was flagged).
    pub false_delete_upper_95: f64,
    /// Share of the truly unused bytes that the method flagged.
    pub unused_bytes_found: f64,
    /// Share of the truly unused objects that the method flagged.
    pub unused_objects_found: f64,
    pub objects: u64,
}

/// One test cut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CutReport {
    pub at: UnixSeconds,
    pub objects: u64,
    pub recent_objects: u64,
    pub model_version: String,
    pub train_cuts: Vec<UnixSeconds>,
    pub calibration_cuts: Vec<UnixSeconds>,
    /// The model's delete threshold on P(reuse) for objects not read in the last 30 days (negative: flags nothing).
    pub model_threshold: f64,
    /// The same for recently read objects (`None`: the model has no separate recent thresholds).
    pub model_threshold_recent: Option<f64>,
    /// The same for objects with a periodic or seasonal signal that were not read recently.
    pub model_threshold_periodic: Option<f64>,
    /// The calibrated recency rule's idle threshold in days (`None`: it could not meet the target).
    pub recency_calibrated_days: Option<f64>,
    /// The delete target the model of this cut was trained for (the target, moved by the adaptive step).
    #[serde(default)]
    pub working_target: f64,
    pub methods: BTreeMap<String, Figures>,
    pub methods_recent: BTreeMap<String, Figures>,
    /// The model's false deletes at this cut (flagged, then read within the horizon), most confident first, at most
    /// [`FALSE_DELETE_SAMPLES`]: what a data scientist looks at first when a cut exceeds the target.
    #[serde(default)]
    pub model_false_deletes: Vec<FalseDelete>,
}

/// Most false deletes listed per cut.
pub const FALSE_DELETE_SAMPLES: usize = 20;

/// One object the model flagged for deletion that was read again within the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FalseDelete {
    pub tenant: String,
    pub key: String,
    pub cohort: Option<String>,
    pub probability: f64,
    pub idle_days: f64,
    /// The threshold segment it fell in: `recent`, `periodic` or `settled`.
    pub segment: String,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub config: EvalConfig,
    pub feature_schema_version: String,
    pub feature_schema_hash: String,
    pub model_kind: String,
    pub log_start: UnixSeconds,
    pub log_end: UnixSeconds,
    pub objects: u64,
    pub reads: u64,
    /// Cuts with too few closed cuts before them to train and calibrate.
    pub skipped_cuts: Vec<UnixSeconds>,
    pub pooled: BTreeMap<String, Figures>,
    /// Objects last read within 30 days of the cut: where the hard decisions are.
    pub pooled_recent: BTreeMap<String, Figures>,
    /// (model - recency_calibrated) / (oracle - recency_calibrated) on unused bytes found; negative: worse than the
    /// rule. `None` when the oracle and the rule coincide.
    pub gap_closed: Option<f64>,
    pub gap_closed_recent: Option<f64>,
    /// Test cuts on which a method's realized false-delete rate exceeded the target.
    pub exceedances: BTreeMap<String, u32>,
    /// Per cohort label (from the inventory, e.g. the synthetic generator's): figures per method.
    pub cohorts: BTreeMap<String, BTreeMap<String, Figures>>,
    pub calibration: Vec<CalibrationBin>,
    pub cuts: Vec<CutReport>,
    /// Pooled (probability, reused, size) of the model and (idle seconds) on the test cuts, for plots.
    #[serde(skip)]
    pub curves: Curves,
}

/// Raw pooled test predictions, for the trade-off plot.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub probability: Vec<f64>,
    pub idle_secs: Vec<i64>,
    pub reused: Vec<bool>,
    pub size: Vec<u64>,
}

/// One adaptive conformal step of the working delete target after a cut with `realized` false-delete rate.
fn adaptive_step(working: f64, target: f64, gamma: f64, realized: f64) -> f64 {
    (working + gamma * (target - realized)).clamp(target / 10.0, target)
}

/// The [`FALSE_DELETE_SAMPLES`] false deletes with the lowest reuse probability (ties by key).
fn most_confident(mut all: Vec<FalseDelete>) -> Vec<FalseDelete> {
    all.sort_by(|a, b| a.probability.total_cmp(&b.probability).then_with(|| a.key.cmp(&b.key)));
    all.truncate(FALSE_DELETE_SAMPLES);
    all
}

fn gap(model: f64, rule: f64, oracle: f64) -> Option<f64> {
    let den = oracle - rule;
    (den.abs() > 1e-12).then(|| (model - rule) / den)
}

/// Runs the protocol on `trace`.
pub fn evaluate<R: Replay + ?Sized>(trace: &R, config: &EvalConfig) -> Result<EvalReport, EvalError> {
    if !(config.target > 0.0 && config.target < 1.0) {
        return Err(EvalError::Plan(format!(
            "the target must be in (0, 1), got {}",
            config.target
        )));
    }
    if !(0.0..=1.0).contains(&config.adaptive_gamma) {
        return Err(EvalError::Plan(format!(
            "the adaptive step must be in [0, 1], got {}",
            config.adaptive_gamma
        )));
    }
    if config.horizon_secs <= 0 || config.step_secs <= 0 {
        return Err(EvalError::Plan("horizon and step must be positive".into()));
    }
    let first = config.from.unwrap_or(trace.log_start() + config.step_secs);
    let last = config
        .to
        .unwrap_or(trace.log_end() - config.horizon_secs)
        .min(trace.log_end() - config.horizon_secs);
    let mut times = Vec::new();
    let mut t = first;
    while t <= last {
        times.push(t);
        t += config.step_secs;
    }
    let cuts: Vec<Cut> = times.iter().map(|&t| trace.cut(t, config.horizon_secs)).collect();
    let mut train_config = config.train.clone();
    train_config.targets.delete = config.target;
    train_config.targets.archive = train_config.targets.archive.max(config.target);
    // Test cuts with fewer closed cuts before them than the calibration asks for get a model that lets nothing go.
    train_config.min_calibration_cuts = config.calibration_cuts.max(1);

    let mut working_target = config.target;
    let mut awaiting_labels: Vec<(UnixSeconds, f64)> = Vec::new();
    let mut pooled: BTreeMap<String, Tally> = METHODS.iter().map(|m| (m.to_string(), Tally::default())).collect();
    let mut pooled_recent = pooled.clone();
    let mut cohorts: BTreeMap<String, BTreeMap<String, Tally>> = BTreeMap::new();
    let mut exceedances: BTreeMap<String, u32> = METHODS.iter().map(|m| (m.to_string(), 0)).collect();
    let mut reports = Vec::new();
    let mut skipped = Vec::new();
    let mut curves = Curves::default();
    let mut model_kind = String::from("logistic");

    for (j, test) in cuts.iter().enumerate() {
        // Cuts are in time order, so the closed ones are a prefix.
        let closed = cuts[..j].partition_point(|c| c.at + config.horizon_secs <= test.at);
        if closed < 2 || test.rows.is_empty() {
            skipped.push(test.at);
            continue;
        }
        // Fold in the realized rates of earlier test cuts whose label windows have closed by now (in time order).
        let folded = awaiting_labels.partition_point(|&(at, _)| at + config.horizon_secs <= test.at);
        for (_, realized) in awaiting_labels.drain(..folded) {
            working_target = adaptive_step(working_target, config.target, config.adaptive_gamma, realized);
        }
        train_config.targets.delete = working_target;
        let k = config.calibration_cuts.clamp(1, closed - 1);
        let train_cuts = &cuts[..closed - k];
        let calibration = &cuts[closed - k..closed];
        let artifact = match train(
            train_cuts,
            calibration,
            &ExtraRows::default(),
            config.horizon_secs,
            "evaluate",
            test.at,
            &train_config,
        ) {
            Ok(a) => a,
            // A cut with a single class cannot train: skip it, say so.
            Err(ModelError::Training(why)) => {
                tracing::warn!(cut = test.at, %why, "cut skipped");
                skipped.push(test.at);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        model_kind = artifact.scorer.kind().to_string();
        if calibration.len() < train_config.min_calibration_cuts {
            tracing::info!(
                cut = test.at,
                calibration_cuts = calibration.len(),
                "too few closed cuts to calibrate on: the model lets nothing go at this cut"
            );
        }
        let model = Model::from_artifact(artifact)?;
        let model_threshold = model.thresholds().delete_max;
        let model_threshold_recent = model.artifact().recent_thresholds.map(|t| t.delete_max);
        let model_threshold_periodic = model.artifact().periodic_thresholds.map(|t| t.delete_max);
        // The recency rule calibrated on the same cuts: flag idle >= D, i.e. score -idle <= -D.
        let groups: Vec<Vec<Scored>> = calibration
            .iter()
            .map(|c| {
                c.rows
                    .iter()
                    .map(|r| Scored {
                        score: -(r.idle_secs as f64),
                        reused: r.reused,
                    })
                    .collect()
            })
            .collect();
        let recency_min_idle = select_threshold(&groups, config.target, config.train.per_cut).map(|s| -s.threshold);

        let mut cut_tallies: BTreeMap<String, Tally> = pooled.keys().map(|m| (m.clone(), Tally::default())).collect();
        let mut cut_recent = cut_tallies.clone();
        let mut recent_objects = 0;
        let mut false_deletes = Vec::new();
        for row in &test.rows {
            let p = model.probability(&row.features);
            let idle = row.idle_secs as f64;
            let flags = [
                // As the engine does: the segment's threshold, never outside the training domain, and never an
                // object the policy retains as too new.
                (
                    "model",
                    !row.too_new(train_config.min_age_secs) && model.flags_delete(&row.features, p),
                ),
                ("recency_calibrated", recency_min_idle.is_some_and(|d| idle >= d)),
                ("recency_7d", row.idle_secs >= 7 * DAY),
                ("recency_30d", row.idle_secs >= 30 * DAY),
                ("recency_90d", row.idle_secs >= 90 * DAY),
                ("oracle", !row.reused),
            ];
            let cohort = trace.cohort(row.object).map(str::to_owned);
            if flags[0].1 && row.reused {
                let (tenant, key) = trace.name(row.object).unwrap_or_default();
                false_deletes.push(FalseDelete {
                    tenant: tenant.to_owned(),
                    key: key.to_owned(),
                    cohort: cohort.clone(),
                    probability: p,
                    idle_days: idle / DAY as f64,
                    segment: Segment::of(&row.features).as_str().to_string(),
                });
            }
            for (method, flagged) in flags {
                if let Some(t) = cut_tallies.get_mut(method) {
                    t.add(flagged, row.reused, row.size);
                }
                if row.recent
                    && let Some(t) = cut_recent.get_mut(method)
                {
                    t.add(flagged, row.reused, row.size);
                }
                if let Some(c) = &cohort {
                    cohorts
                        .entry(c.clone())
                        .or_default()
                        .entry(method.to_string())
                        .or_default()
                        .add(flagged, row.reused, row.size);
                }
            }
            recent_objects += u64::from(row.recent);
            curves.probability.push(p);
            curves.idle_secs.push(row.idle_secs);
            curves.reused.push(row.reused);
            curves.size.push(row.size);
        }
        for (method, tally) in &cut_tallies {
            let f = tally.figures();
            if f.false_delete_rate > config.target
                && let Some(e) = exceedances.get_mut(method)
            {
                *e += 1;
            }
            if let Some(p) = pooled.get_mut(method) {
                p.merge(tally);
            }
        }
        for (method, tally) in &cut_recent {
            if let Some(p) = pooled_recent.get_mut(method) {
                p.merge(tally);
            }
        }
        let model_tally = cut_tallies.get("model").copied().unwrap_or_default();
        awaiting_labels.push((test.at, model_tally.figures().false_delete_rate));
        reports.push(CutReport {
            at: test.at,
            objects: test.rows.len() as u64,
            recent_objects,
            model_version: model.version().to_string(),
            train_cuts: train_cuts.iter().map(|c| c.at).collect(),
            calibration_cuts: calibration.iter().map(|c| c.at).collect(),
            model_threshold,
            model_threshold_recent,
            model_threshold_periodic,
            recency_calibrated_days: recency_min_idle.map(|d| d / DAY as f64),
            working_target,
            methods: cut_tallies.iter().map(|(m, t)| (m.clone(), t.figures())).collect(),
            methods_recent: cut_recent.iter().map(|(m, t)| (m.clone(), t.figures())).collect(),
            model_false_deletes: most_confident(false_deletes),
        });
    }
    if reports.is_empty() {
        return Err(EvalError::Plan(format!(
            "no cut could be evaluated: {} cuts, and each test cut needs two earlier cuts whose label windows have \
             closed; use a shorter --step or --horizon, or a longer trace",
            cuts.len()
        )));
    }
    let figures = |m: &BTreeMap<String, Tally>| -> BTreeMap<String, Figures> {
        m.iter().map(|(k, t)| (k.clone(), t.figures())).collect()
    };
    let pooled_f = figures(&pooled);
    let pooled_recent_f = figures(&pooled_recent);
    let gap_of = |f: &BTreeMap<String, Figures>| {
        gap(
            f["model"].unused_bytes_found,
            f["recency_calibrated"].unused_bytes_found,
            f["oracle"].unused_bytes_found,
        )
    };
    let schema = reprieve_core::FeatureSchema::current();
    Ok(EvalReport {
        config: config.clone(),
        feature_schema_version: schema.version,
        feature_schema_hash: schema.hash,
        model_kind,
        log_start: trace.log_start(),
        log_end: trace.log_end(),
        objects: trace.objects(),
        reads: trace.reads(),
        skipped_cuts: skipped,
        gap_closed: gap_of(&pooled_f),
        gap_closed_recent: gap_of(&pooled_recent_f),
        pooled: pooled_f,
        pooled_recent: pooled_recent_f,
        exceedances,
        cohorts: cohorts.iter().map(|(c, m)| (c.clone(), figures(m))).collect(),
        calibration: calibration_table(&curves.probability, &curves.reused, 10),
        cuts: reports,
        curves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_target_tightens_after_an_exceedance_and_relaxes_back_to_the_target() {
        let target = 0.01;
        let tight = adaptive_step(target, target, 0.05, 0.09);
        assert!((tight - 0.006).abs() < 1e-12, "{tight}");
        // Cuts under the target relax it again, never beyond the target.
        let relaxed = adaptive_step(tight, target, 0.05, 0.0);
        assert!(relaxed > tight && relaxed <= target);
        assert_eq!(adaptive_step(target, target, 0.05, 0.0), target);
        // A disastrous cut cannot drive it below a tenth of the target.
        assert_eq!(adaptive_step(target, target, 1.0, 1.0), target / 10.0);
        // gamma = 0: fixed.
        assert_eq!(adaptive_step(target, target, 0.0, 0.5), target);
    }

    #[test]
    fn false_deletes_are_listed_most_confident_first_and_capped() {
        let fd = |key: &str, p: f64| FalseDelete {
            tenant: String::new(),
            key: key.into(),
            cohort: None,
            probability: p,
            idle_days: 1.0,
            segment: "settled".into(),
        };
        let all: Vec<FalseDelete> = (0..30)
            .map(|i| fd(&format!("k{i:02}"), 0.5 - f64::from(i) / 100.0))
            .collect();
        let kept = most_confident(all);
        assert_eq!(kept.len(), FALSE_DELETE_SAMPLES);
        assert_eq!(kept[0].key, "k29");
        assert!(kept.windows(2).all(|w| w[0].probability <= w[1].probability));
    }
}
