//! Training: logistic regression (linfa) on standardized features, Platt calibration on separate cuts, and
//! conservative per-class thresholds chosen on those calibration cuts (see [`crate::threshold`]).

use std::collections::BTreeMap;
use std::time::Instant;

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use reprieve_core::Thresholds;
use reprieve_core::features::{FEATURE_COUNT, FeatureSchema, FeatureVector};
use serde::{Deserialize, Serialize};

use crate::artifact::{
    ARTIFACT_FORMAT, FeatureDomain, Model, ModelArtifact, ScorerParams, Segment, Targets, TrainingSummary,
};
use crate::calibration::Platt;
use crate::dataset::Cut;
use crate::error::ModelError;
use crate::metrics;
use crate::threshold::{PerGroup, Scored, select_threshold};

/// Which scorer to fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Logistic regression on standardized features.
    #[default]
    Logistic,
    /// A decision tree (linfa-trees) whose leaves hold the training reuse rate.
    Tree,
}

/// Training knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Artifact name (the version adds a parameter hash).
    pub name: String,
    /// False-delete targets per verdict class.
    pub targets: Targets,
    /// Most majority-class rows per minority-class row used for fitting (class balance by undersampling).
    pub balance_ratio: f64,
    /// Most rows used for fitting (deterministic subsample beyond it).
    pub max_train_rows: usize,
    /// L2 penalty of the logistic regression.
    pub l2: f64,
    pub max_iterations: u64,
    /// Calibrated P(reuse) at or above which an object is retained; between the archive threshold and this it
    /// goes to REVIEW (an owner is asked).
    pub retain_min: f64,
    /// Share of training rows also added without prefix activity, so the model learns to score objects whose
    /// caller does not know their prefixes. With it, every calibration cut is also checked without prefix activity
    /// and the thresholds must hold on both. Off (0) by default: on the synthetic evaluation trace a share of 0.25
    /// raised the pooled false-delete rate of the model's delete candidates from 0.97% to 1.28% (target 1%).
    pub prefix_dropout: f64,
    /// What each calibration cut must show for a threshold to be accepted (besides the pooled bound).
    pub per_cut: PerGroup,
    /// Which scorer to fit.
    pub kind: ModelKind,
    /// The tree's hyper-parameters (with `kind = tree`).
    pub tree: crate::tree::TreeConfig,
    /// Fewest calibration cuts on which thresholds are chosen at all: with fewer, the model lets nothing go (its
    /// thresholds are [`Thresholds::NEVER_LET_GO`]), since a bound shown on one or two cuts did not survive drift.
    pub min_calibration_cuts: usize,
    /// The policy's minimum age (`reprieve_core::PolicyConfig::min_age_secs`): younger objects are retained whatever
    /// the model says, so they are not threshold candidates and the bound is shown on the objects the model decides.
    pub min_age_secs: i64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "reprieve".into(),
            targets: Targets::default(),
            balance_ratio: 3.0,
            max_train_rows: 2_000_000,
            l2: 1.0,
            max_iterations: 40,
            retain_min: 0.5,
            prefix_dropout: 0.0,
            per_cut: PerGroup::default(),
            min_calibration_cuts: 3,
            kind: ModelKind::default(),
            tree: crate::tree::TreeConfig::default(),
            min_age_secs: reprieve_core::PolicyConfig::default().min_age_secs,
        }
    }
}

/// Labelled rows that are not from a trace cut (e.g. restore feedback: restored = reused).
#[derive(Debug, Clone, Default)]
pub struct ExtraRows {
    pub features: Vec<FeatureVector>,
    pub reused: Vec<bool>,
}

/// A calibration item with its recency segment.
#[derive(Debug, Clone, Copy)]
struct SegmentScored {
    scored: Scored,
    segment: Segment,
}

/// The thresholds of one recency segment: each class's threshold is chosen on that segment's items alone, once
/// per variant (as is, and without prefix activity when the model was trained for it); the stricter one wins.
fn segment_thresholds(
    as_is: &[Vec<SegmentScored>],
    without_prefix: &[Vec<SegmentScored>],
    segment: Segment,
    config: &TrainConfig,
) -> Thresholds {
    let only = |groups: &[Vec<SegmentScored>]| -> Vec<Vec<Scored>> {
        groups
            .iter()
            .map(|g| g.iter().filter(|s| s.segment == segment).map(|s| s.scored).collect())
            .collect()
    };
    let (as_is, without_prefix) = (only(as_is), only(without_prefix));
    let pick = |target: f64| {
        let with = select_threshold(&as_is, target, config.per_cut).map(|s| s.threshold);
        if without_prefix.is_empty() {
            return with;
        }
        Some(with?.min(select_threshold(&without_prefix, target, config.per_cut)?.threshold))
    };
    let delete_max = pick(config.targets.delete).unwrap_or(-1.0);
    let archive_max = pick(config.targets.archive).unwrap_or(-1.0).max(delete_max);
    let retain_min = config.retain_min.max(archive_max).clamp(0.0, 1.0);
    Thresholds {
        delete_max,
        archive_max,
        retain_min,
    }
}

/// Deterministic keep/drop for subsampling row `i` with probability `keep`.
fn keep_row(i: usize, keep: f64) -> bool {
    if keep >= 1.0 {
        return true;
    }
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64 <= keep
}

/// Trains an artifact: fits on `train` (plus `extra`), calibrates and selects thresholds on `calibration`, and
/// fills in metrics measured on the calibration cuts.
pub fn train(
    train: &[Cut],
    calibration: &[Cut],
    extra: &ExtraRows,
    horizon_secs: i64,
    source: &str,
    created_at: i64,
    config: &TrainConfig,
) -> Result<ModelArtifact, ModelError> {
    let started = Instant::now();
    if calibration.iter().all(|c| c.rows.is_empty()) {
        return Err(ModelError::Training("the calibration cuts have no rows".into()));
    }
    let dropped: Vec<(FeatureVector, bool)> = train
        .iter()
        .flat_map(|c| c.rows.iter())
        .enumerate()
        .filter(|(i, _)| config.prefix_dropout > 0.0 && keep_row(i.wrapping_add(1 << 50), config.prefix_dropout))
        .map(|(_, r)| (r.features.without_prefix_activity(), r.reused))
        .collect();
    let rows: Vec<(&FeatureVector, bool)> = train
        .iter()
        .flat_map(|c| c.rows.iter().map(|r| (&r.features, r.reused)))
        .chain(extra.features.iter().zip(extra.reused.iter().copied()))
        .chain(dropped.iter().map(|(f, r)| (f, *r)))
        .collect();
    let positives = rows.iter().filter(|r| r.1).count();
    let negatives = rows.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(ModelError::Training(format!(
            "the training cuts need both reused and unused objects ({positives} reused, {negatives} unused)"
        )));
    }
    // Class balance: undersample the majority class, then cap the total.
    let (minority, majority) = (positives.min(negatives) as f64, positives.max(negatives) as f64);
    let keep_majority = (config.balance_ratio * minority / majority).min(1.0);
    let positive_is_majority = positives > negatives;
    let balanced: Vec<(&FeatureVector, bool)> = rows
        .iter()
        .enumerate()
        .filter(|(i, r)| r.1 != positive_is_majority || keep_row(*i, keep_majority))
        .map(|(_, r)| *r)
        .collect();
    let keep_total = (config.max_train_rows as f64 / balanced.len() as f64).min(1.0);
    let fit_rows: Vec<(&FeatureVector, bool)> = balanced
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep_row(i.wrapping_add(1 << 40), keep_total))
        .map(|(_, r)| r)
        .collect();

    let n = fit_rows.len();
    let mut x = Array2::<f64>::zeros((n, FEATURE_COUNT));
    for (i, (f, _)) in fit_rows.iter().enumerate() {
        x.row_mut(i).assign(&ndarray::ArrayView1::from(&f.values()[..]));
    }
    let y: Array1<bool> = fit_rows.iter().map(|r| r.1).collect();
    let mean = x
        .mean_axis(ndarray::Axis(0))
        .unwrap_or_else(|| Array1::zeros(FEATURE_COUNT));
    let mut scale = x.std_axis(ndarray::Axis(0), 0.0);
    scale.mapv_inplace(|s| if s > 1e-9 { s } else { 1.0 });

    let fit_started = Instant::now();
    let scorer = match config.kind {
        ModelKind::Logistic => {
            x -= &mean;
            x /= &scale;
            let dataset = Dataset::new(x, y);
            let fitted = LogisticRegression::default()
                .alpha(config.l2)
                .max_iterations(config.max_iterations)
                .fit(&dataset)
                .map_err(|e| ModelError::Training(format!("logistic regression did not fit: {e}")))?;
            // linfa models the probability of its "positive" label, which is the larger class: make it P(reuse).
            let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
            ScorerParams::Logistic {
                mean: mean.to_vec(),
                scale: scale.to_vec(),
                weights: fitted.params().iter().map(|w| w * sign).collect(),
                intercept: fitted.intercept() * sign,
            }
        }
        ModelKind::Tree => {
            // Trees need no standardization; linfa-trees scans every row per node and feature, so subsample.
            let keep = (config.tree.max_fit_rows as f64 / n.max(1) as f64).min(1.0);
            let picked: Vec<usize> = (0..n).filter(|&i| keep_row(i.wrapping_add(1 << 45), keep)).collect();
            let xs = x.select(ndarray::Axis(0), &picked);
            let ys: Array1<bool> = picked.iter().map(|&i| y[i]).collect();
            ScorerParams::Tree {
                nodes: crate::tree::fit(xs, ys, &config.tree)?,
            }
        }
    };
    let fit_seconds = fit_started.elapsed().as_secs_f64();

    let schema = FeatureSchema::current();
    let mut artifact = ModelArtifact {
        format: ARTIFACT_FORMAT.to_string(),
        name: config.name.clone(),
        version: String::new(),
        created_at,
        horizon_secs,
        feature_schema: schema,
        scorer,
        calibration: Platt::IDENTITY,
        thresholds: Thresholds::NEVER_LET_GO,
        recent_thresholds: None,
        periodic_thresholds: None,
        targets: config.targets,
        training: TrainingSummary::default(),
        metrics: BTreeMap::new(),
        domain: Some(FeatureDomain::of_rows(rows.iter().map(|r| r.0))),
    };

    // Calibrate on the held-out cuts.
    let uncalibrated = Model::from_artifact(artifact.clone())?;
    // Calibration groups: every calibration cut as it is, and (with prefix dropout) again without prefix activity,
    // so that the thresholds must hold for callers that send prefixes and for those that do not.
    let mut variants: Vec<Vec<(FeatureVector, bool)>> = calibration
        .iter()
        .map(|c| c.rows.iter().map(|r| (r.features.clone(), r.reused)).collect())
        .collect();
    // Objects the policy retains as too new are never the model's to let go: not threshold candidates.
    let too_new: Vec<Vec<bool>> = calibration
        .iter()
        .map(|c| c.rows.iter().map(|r| r.too_new(config.min_age_secs)).collect())
        .collect();
    if config.prefix_dropout > 0.0 {
        let without: Vec<Vec<(FeatureVector, bool)>> = calibration
            .iter()
            .map(|c| {
                c.rows
                    .iter()
                    .map(|r| (r.features.without_prefix_activity(), r.reused))
                    .collect()
            })
            .collect();
        variants.extend(without);
    }
    let logits: Vec<Vec<f64>> = variants
        .iter()
        .map(|g| g.iter().map(|(f, _)| uncalibrated.raw_logit(f)).collect())
        .collect();
    let flat_logits: Vec<f64> = logits.iter().flatten().copied().collect();
    let flat_reused_all: Vec<bool> = variants.iter().flat_map(|g| g.iter().map(|r| r.1)).collect();
    artifact.calibration = Platt::fit(&flat_logits, &flat_reused_all);

    // Thresholds on calibrated probabilities, per group (cut x variant) and per recency segment.
    let groups: Vec<Vec<SegmentScored>> = variants
        .iter()
        .zip(&logits)
        .zip(too_new.iter().cycle())
        .map(|((g, l), young)| {
            g.iter()
                .zip(l)
                .zip(young)
                .map(|(((f, reused), &z), &young)| SegmentScored {
                    scored: Scored {
                        // Out of the training domain the score is an extrapolation, and a too-new object is the
                        // policy's: neither is ever flagged, so neither is a candidate.
                        score: if uncalibrated.in_domain(f) && !young {
                            crate::calibration::sigmoid(artifact.calibration.logit(z))
                        } else {
                            f64::INFINITY
                        },
                        reused: *reused,
                    },
                    segment: Segment::of(f),
                })
                .collect()
        })
        .collect();
    // The copies without prefix activity are the same objects, not new evidence: each variant must meet the bound
    // on its own (pooling them would count every object twice), and the stricter threshold wins.
    let (as_is, without_prefix) = groups.split_at(calibration.len());
    // Too few calibration cuts: the model lets nothing go (the `calibration_cuts` metric says why).
    let enough_cuts = calibration.len() >= config.min_calibration_cuts;
    // Objects with a periodic or seasonal signal are never let go: their cycle (a month, a season) is longer than
    // what a few calibration cuts can show to be over, and choosing their thresholds on such cuts made it worse on a
    // 400-day trace (seasonal assets flagged in their off-season at 9.8%, see the model card).
    let chosen = |segment: Segment| {
        if enough_cuts && segment != Segment::Periodic {
            segment_thresholds(as_is, without_prefix, segment, config)
        } else {
            Thresholds {
                retain_min: config.retain_min.clamp(0.0, 1.0),
                ..Thresholds::NEVER_LET_GO
            }
        }
    };
    let (settled, recent, periodic) = (
        chosen(Segment::Settled),
        chosen(Segment::Recent),
        chosen(Segment::Periodic),
    );
    artifact.thresholds = settled;
    artifact.recent_thresholds = Some(recent);
    artifact.periodic_thresholds = Some(periodic);
    let threshold_of = |s: &SegmentScored| match s.segment {
        Segment::Recent => &recent,
        Segment::Periodic => &periodic,
        Segment::Settled => &settled,
    };

    // Metrics on the calibration cuts as they are (with prefix activity).
    let probabilities: Vec<f64> = calibration
        .iter()
        .zip(&logits)
        .flat_map(|(_, l)| {
            l.iter()
                .map(|&z| crate::calibration::sigmoid(artifact.calibration.logit(z)))
        })
        .collect();
    let flat_reused: Vec<bool> = calibration
        .iter()
        .flat_map(|c| c.rows.iter().map(|r| r.reused))
        .collect();
    let in_domain = calibration
        .iter()
        .flat_map(|c| &c.rows)
        .filter(|r| uncalibrated.in_domain(&r.features))
        .count();
    let in_domain_share = in_domain as f64 / probabilities.len().max(1) as f64;
    let mut m = BTreeMap::new();
    if let Some(auc) = metrics::roc_auc(&probabilities, &flat_reused) {
        m.insert("calibration_auc".to_string(), auc);
    }
    m.insert(
        "calibration_brier".to_string(),
        metrics::brier(&probabilities, &flat_reused),
    );
    m.insert(
        "calibration_log_loss".to_string(),
        metrics::log_loss(&probabilities, &flat_reused),
    );
    let base_rate = flat_reused.iter().filter(|&&r| r).count() as f64 / flat_reused.len().max(1) as f64;
    m.insert("calibration_reuse_rate".to_string(), base_rate);
    type ClassThreshold = fn(&Thresholds) -> f64;
    let classes: [(&str, ClassThreshold); 2] = [("delete", |t| t.delete_max), ("archive", |t| t.archive_max)];
    for (population, variant, only) in [
        ("", as_is, None),
        ("recent_", as_is, Some(Segment::Recent)),
        ("periodic_", as_is, Some(Segment::Periodic)),
        ("no_prefix_", without_prefix, None),
    ] {
        if variant.is_empty() {
            continue;
        }
        let rows: Vec<&SegmentScored> = variant
            .iter()
            .flatten()
            .filter(|s| only.is_none_or(|o| s.segment == o))
            .collect();
        for (class, threshold) in classes {
            let flagged: Vec<bool> = rows
                .iter()
                .filter(|s| s.scored.score <= threshold(threshold_of(s)))
                .map(|s| s.scored.reused)
                .collect();
            let k = flagged.iter().filter(|&&r| r).count() as u64;
            let n = flagged.len() as u64;
            m.insert(
                format!("calibration_{population}{class}_flagged_share"),
                n as f64 / rows.len().max(1) as f64,
            );
            m.insert(
                format!("calibration_{population}{class}_false_rate"),
                if n == 0 { 0.0 } else { k as f64 / n as f64 },
            );
            m.insert(
                format!("calibration_{population}{class}_false_upper_95"),
                crate::stats::upper_95(k, n),
            );
        }
    }
    m.insert("fit_seconds".to_string(), fit_seconds);
    m.insert("calibration_cuts".to_string(), calibration.len() as f64);
    m.insert("calibration_in_domain_share".to_string(), in_domain_share);
    artifact.metrics = m;
    artifact.training = TrainingSummary {
        source: source.to_string(),
        train_rows: rows.len() as u64,
        train_positives: positives as u64,
        calibration_rows: flat_reused.len() as u64,
        calibration_positives: flat_reused.iter().filter(|&&r| r).count() as u64,
        train_cuts: train.iter().map(|c| c.at).collect(),
        calibration_cuts: calibration.iter().map(|c| c.at).collect(),
        seconds: started.elapsed().as_secs_f64(),
    };
    artifact.version = artifact.compute_version();
    // The result must load like any artifact would.
    Model::from_artifact(artifact.clone())?;
    Ok(artifact)
}
