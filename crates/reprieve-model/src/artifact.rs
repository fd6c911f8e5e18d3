//! The model artifact (what `reprieve train` writes and every front door loads) and its runtime form.
//!
//! An artifact is one JSON document: the feature schema it was trained on (refused if it differs from the code's),
//! the scorer's parameters, the calibration, the thresholds per verdict class with the targets they were chosen
//! for, a summary of the training data, and evaluation metrics.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use reprieve_core::features::{FEATURE_COUNT, FEATURE_NAMES, FeatureSchema, FeatureVector};
use reprieve_core::{Contribution, Thresholds};
use serde::{Deserialize, Serialize};

use crate::calibration::{Platt, sigmoid};
use crate::error::ModelError;

/// The artifact format this code reads and writes.
pub const ARTIFACT_FORMAT: &str = "reprieve-model/1";

/// The scorer's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScorerParams {
    /// Logistic regression on standardized features: `z = intercept + sum_i w_i (x_i - mean_i) / scale_i`.
    Logistic {
        mean: Vec<f64>,
        scale: Vec<f64>,
        weights: Vec<f64>,
        intercept: f64,
    },
    /// A decision tree on raw features; the leaf's log-odds is the score (see [`crate::tree`]).
    Tree { nodes: Vec<crate::tree::Node> },
}

impl ScorerParams {
    /// `logistic` or `tree`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Logistic { .. } => "logistic",
            Self::Tree { .. } => "tree",
        }
    }
}

/// False-delete targets the thresholds were selected for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Target of DELETE_CANDIDATE.
    pub delete: f64,
    /// Target of ARCHIVE.
    pub archive: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            delete: 0.01,
            archive: 0.05,
        }
    }
}

/// The region of feature space the model was fitted on. An object outside it gets an extrapolated score, which
/// the policy does not trust with an ARCHIVE or DELETE_CANDIDATE verdict (reason `OUT_OF_DOMAIN`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDomain {
    /// Per feature, the smallest and largest value among the training rows.
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Slack beyond the training range, as a fraction of that range.
    pub tolerance: f64,
    /// Features not checked: they grow with the length of the log by construction (e.g. `coverage_days_log`),
    /// so any later scoring time lies beyond the training range.
    pub exempt: Vec<String>,
}

impl FeatureDomain {
    /// Features that grow with the log's length by construction.
    pub const DEFAULT_EXEMPT: [&'static str; 1] = ["coverage_days_log"];

    /// The domain of `rows` with the default tolerance and exemptions.
    pub fn of_rows<'a>(rows: impl IntoIterator<Item = &'a FeatureVector>) -> Self {
        let mut lower = vec![f64::INFINITY; FEATURE_COUNT];
        let mut upper = vec![f64::NEG_INFINITY; FEATURE_COUNT];
        for row in rows {
            for ((lo, hi), &x) in lower.iter_mut().zip(upper.iter_mut()).zip(row.values()) {
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
        }
        for (lo, hi) in lower.iter_mut().zip(upper.iter_mut()) {
            if !lo.is_finite() || !hi.is_finite() {
                (*lo, *hi) = (0.0, 0.0);
            }
        }
        Self {
            lower,
            upper,
            tolerance: 0.25,
            exempt: Self::DEFAULT_EXEMPT.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What the model was trained on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub source: String,
    pub train_rows: u64,
    pub train_positives: u64,
    pub calibration_rows: u64,
    pub calibration_positives: u64,
    pub train_cuts: Vec<i64>,
    pub calibration_cuts: Vec<i64>,
    pub seconds: f64,
}

/// The populations that get thresholds of their own: a bound that holds pooled over the long-idle majority can fail
/// on the objects where reuse is likely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Read in the last 30 days ([`FeatureVector::recently_read`]).
    Recent,
    /// Not recently read, but with a periodic or seasonal signal ([`FeatureVector::periodic_signal`]).
    Periodic,
    /// Everything else.
    Settled,
}

impl Segment {
    pub const ALL: [Segment; 3] = [Segment::Recent, Segment::Periodic, Segment::Settled];

    /// Its name in reports: `recent`, `periodic` or `settled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recent => "recent",
            Self::Periodic => "periodic",
            Self::Settled => "settled",
        }
    }

    pub fn of(features: &FeatureVector) -> Self {
        if features.recently_read() {
            Self::Recent
        } else if features.periodic_signal() {
            Self::Periodic
        } else {
            Self::Settled
        }
    }
}

/// A serialised model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format: String,
    pub name: String,
    /// `name-<hash of the parameters>`: two artifacts with the same version score identically.
    pub version: String,
    pub created_at: i64,
    /// The reuse horizon H the probability refers to, in seconds.
    pub horizon_secs: i64,
    pub feature_schema: FeatureSchema,
    pub scorer: ScorerParams,
    pub calibration: Platt,
    /// Thresholds for objects that are not recently read (and for all objects when `recent_thresholds` is absent).
    pub thresholds: Thresholds,
    /// Thresholds for recently read objects ([`FeatureVector::recently_read`]), chosen on those objects alone:
    /// pooled with the long-idle majority, a bound can hold overall while failing where reuse is common. Absent in
    /// artifacts that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_thresholds: Option<Thresholds>,
    /// Thresholds for objects not recently read but with a periodic or seasonal signal
    /// ([`FeatureVector::periodic_signal`]), chosen on those objects alone. Absent in artifacts that predate it
    /// (then `thresholds` apply to them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_thresholds: Option<Thresholds>,
    pub targets: Targets,
    pub training: TrainingSummary,
    pub metrics: BTreeMap<String, f64>,
    /// Where the model may be trusted; absent in artifacts that predate it (then every object is in domain).
    #[serde(default)]
    pub domain: Option<FeatureDomain>,
}

impl ModelArtifact {
    /// Computes the version string from the name and the parameters.
    pub fn compute_version(&self) -> String {
        let mut h = reprieve_core::hash::Fnv64::new();
        let params = serde_json::to_vec(&(&self.scorer, &self.calibration, &self.thresholds, self.horizon_secs))
            .unwrap_or_default();
        h.write(&params);
        // Later additions hash only when present, so older artifacts keep their versions.
        if let Some(recent) = &self.recent_thresholds {
            h.write(&serde_json::to_vec(recent).unwrap_or_default());
        }
        if let Some(periodic) = &self.periodic_thresholds {
            h.write(b"periodic");
            h.write(&serde_json::to_vec(periodic).unwrap_or_default());
        }
        h.write(self.feature_schema.hash.as_bytes());
        format!("{}-{:08x}", self.name, h.finish() as u32)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let write = |e| ModelError::Write {
            path: path.to_path_buf(),
            source: e,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        // Write then rename, so a reader (or a hot reload) never sees half an artifact.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json() + "\n").map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)
    }
}

/// The scorer's parameters in the form scoring uses. One per loaded model, so the logistic variant's inline arrays
/// (kept inline for the scoring loop) cost nothing worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Scorer {
    Logistic {
        /// Weights and intercept with the standardization folded in.
        folded_weights: [f64; FEATURE_COUNT],
        folded_intercept: f64,
        /// The (feature, folded weight) terms of the log-odds, in feature order, without those of a zero weight
        /// unless the intercept is -0 (see [`Scorer::logit_terms`]).
        terms: Vec<(usize, f64)>,
        /// Per-feature training means, for contributions.
        mean: [f64; FEATURE_COUNT],
    },
    Tree(Vec<crate::tree::Node>),
}

impl Scorer {
    fn logistic(mean: &[f64], scale: &[f64], weights: &[f64], intercept: f64) -> Result<Self, ModelError> {
        for (name, v) in [("mean", mean), ("scale", scale), ("weights", weights)] {
            if v.len() != FEATURE_COUNT {
                return Err(ModelError::Invalid(format!(
                    "{name} has {} values for {FEATURE_COUNT} features",
                    v.len()
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(ModelError::Invalid(format!("{name} has a non-finite value")));
            }
        }
        if scale.iter().any(|&s| s <= 0.0) || !intercept.is_finite() {
            return Err(ModelError::Invalid(
                "scale must be positive and the intercept finite".into(),
            ));
        }
        let mut folded_weights = [0.0; FEATURE_COUNT];
        let mut mean_arr = [0.0; FEATURE_COUNT];
        let mut folded_intercept = intercept;
        for i in 0..FEATURE_COUNT {
            folded_weights[i] = weights[i] / scale[i];
            mean_arr[i] = mean[i];
            folded_intercept -= folded_weights[i] * mean[i];
        }
        Ok(Self::Logistic {
            folded_weights,
            folded_intercept,
            terms: Self::logit_terms(&folded_weights, folded_intercept),
            mean: mean_arr,
        })
    }

    /// The terms of the log-odds worth adding. Feature values are finite (a [`FeatureVector`] holds nothing else),
    /// so a zero weight adds a zero, which leaves the sum as it is unless the sum is -0; and a sum is -0 only if
    /// the intercept and every term before are. Leaving those terms out gives the same log-odds, bit for bit, in
    /// fewer dependent additions.
    fn logit_terms(folded_weights: &[f64; FEATURE_COUNT], folded_intercept: f64) -> Vec<(usize, f64)> {
        let keep_all = folded_intercept.to_bits() == (-0.0f64).to_bits();
        folded_weights
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, w)| keep_all || w != 0.0)
            .collect()
    }
}

/// The rank of feature `i`'s contribution `c` among contributions: larger for a larger magnitude, then for an
/// earlier feature, which is the order contributions are listed in; 0 for a zero contribution. The magnitude's bits
/// order as `total_cmp` orders non-negative floats; the low half is the feature's index, reversed.
fn contribution_rank(i: usize, c: f64) -> u128 {
    let magnitude = c.abs().to_bits();
    // Without a branch on the magnitude: which features are zero differs from object to object.
    ((u128::from(magnitude) << 64) | u128::from(u64::MAX - i as u64)) & 0u128.wrapping_sub(u128::from(magnitude != 0))
}

/// Feature indices by decreasing typical contribution: the magnitude of a logistic model's standardized weight
/// (the contribution of a value one standard deviation from the mean), ties and trees in feature order.
fn likely_largest_first(params: &ScorerParams) -> Vec<u8> {
    const _: () = assert!(FEATURE_COUNT < 256, "feature indices and their count must fit in a u8");
    let mut order: Vec<u8> = (0..FEATURE_COUNT as u8).collect();
    if let ScorerParams::Logistic { weights, .. } = params {
        order.sort_by(|&a, &b| weights[usize::from(b)].abs().total_cmp(&weights[usize::from(a)].abs()));
    }
    order
}

/// Up to this many contributions are selected without sorting all of them.
const SELECT_AT_MOST: usize = 16;

/// A loaded, validated model, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    artifact: ModelArtifact,
    scorer: Scorer,
    /// Per feature, the accepted range (`-inf..inf` for unchecked features).
    accepted: Vec<(f64, f64)>,
    /// Every feature index, in the order contributions are best selected in (see [`likely_largest_first`]).
    likely_largest_first: Vec<u8>,
}

impl Model {
    /// Validates an artifact against this build (format, feature schema, shapes, finite numbers, thresholds).
    pub fn from_artifact(artifact: ModelArtifact) -> Result<Self, ModelError> {
        if artifact.format != ARTIFACT_FORMAT {
            return Err(ModelError::Format {
                found: artifact.format,
                expected: ARTIFACT_FORMAT,
            });
        }
        let expected = FeatureSchema::current();
        if artifact.feature_schema.hash != expected.hash
            || artifact.feature_schema.version != expected.version
            || artifact.feature_schema.names != expected.names
        {
            return Err(ModelError::SchemaMismatch {
                found_version: artifact.feature_schema.version,
                found_hash: artifact.feature_schema.hash,
                expected_version: expected.version,
                expected_hash: expected.hash,
            });
        }
        artifact
            .thresholds
            .validate()
            .map_err(|e| ModelError::Invalid(e.to_string()))?;
        for (name, segment) in [
            ("recent_thresholds", &artifact.recent_thresholds),
            ("periodic_thresholds", &artifact.periodic_thresholds),
        ] {
            if let Some(t) = segment {
                t.validate().map_err(|e| ModelError::Invalid(format!("{name}: {e}")))?;
            }
        }
        if artifact.horizon_secs <= 0 {
            return Err(ModelError::Invalid("horizon_secs must be positive".into()));
        }
        if !(artifact.calibration.a.is_finite() && artifact.calibration.b.is_finite()) {
            return Err(ModelError::Invalid("calibration is not finite".into()));
        }
        let scorer = match &artifact.scorer {
            ScorerParams::Logistic {
                mean,
                scale,
                weights,
                intercept,
            } => Scorer::logistic(mean, scale, weights, *intercept)?,
            ScorerParams::Tree { nodes } => {
                crate::tree::validate(nodes, FEATURE_COUNT).map_err(ModelError::Invalid)?;
                Scorer::Tree(nodes.clone())
            }
        };
        let accepted = match &artifact.domain {
            None => vec![(f64::NEG_INFINITY, f64::INFINITY); FEATURE_COUNT],
            Some(d) => {
                if d.lower.len() != FEATURE_COUNT || d.upper.len() != FEATURE_COUNT || !d.tolerance.is_finite() {
                    return Err(ModelError::Invalid("domain does not match the feature schema".into()));
                }
                (0..FEATURE_COUNT)
                    .map(|i| {
                        let name = &artifact.feature_schema.names[i];
                        if d.exempt.iter().any(|e| e == name) {
                            return (f64::NEG_INFINITY, f64::INFINITY);
                        }
                        let slack = d.tolerance.max(0.0) * (d.upper[i] - d.lower[i]) + 1e-9;
                        (d.lower[i] - slack, d.upper[i] + slack)
                    })
                    .collect()
            }
        };
        Ok(Self {
            likely_largest_first: likely_largest_first(&artifact.scorer),
            artifact,
            scorer,
            accepted,
        })
    }

    /// Parses and validates an artifact from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        Self::from_artifact(serde_json::from_str(text)?)
    }

    /// Reads and validates an artifact file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_json(&text)
    }

    pub fn artifact(&self) -> &ModelArtifact {
        &self.artifact
    }

    pub fn version(&self) -> &str {
        &self.artifact.version
    }

    /// The thresholds of objects that are not recently read.
    pub fn thresholds(&self) -> &Thresholds {
        &self.artifact.thresholds
    }

    /// The thresholds that apply to an object with these features (its recency segment's).
    pub fn thresholds_for(&self, features: &FeatureVector) -> &Thresholds {
        let segment = match Segment::of(features) {
            Segment::Recent => &self.artifact.recent_thresholds,
            Segment::Periodic => &self.artifact.periodic_thresholds,
            Segment::Settled => &None,
        };
        segment.as_ref().unwrap_or(&self.artifact.thresholds)
    }

    /// Whether the model alone would make this object a delete candidate (in domain and at or below its
    /// segment's delete threshold); the policy's hard rules can still hold it back.
    pub fn flags_delete(&self, features: &FeatureVector, probability: f64) -> bool {
        probability <= self.thresholds_for(features).delete_max && self.in_domain(features)
    }

    pub fn horizon_secs(&self) -> i64 {
        self.artifact.horizon_secs
    }

    /// Whether `features` lie inside the region the model was trained on (see [`FeatureDomain`]).
    pub fn in_domain(&self, features: &FeatureVector) -> bool {
        features
            .values()
            .iter()
            .zip(&self.accepted)
            .all(|(x, (lo, hi))| (*lo..=*hi).contains(x))
    }

    /// Uncalibrated log-odds of reuse.
    pub fn raw_logit(&self, features: &FeatureVector) -> f64 {
        match &self.scorer {
            Scorer::Logistic {
                folded_intercept,
                terms,
                ..
            } => {
                let x = features.values();
                terms.iter().fold(*folded_intercept, |z, &(i, w)| z + w * x[i])
            }
            Scorer::Tree(nodes) => nodes[crate::tree::walk(nodes, features.values(), |_| {})].log_odds,
        }
    }

    /// Calibrated P(reuse within the horizon).
    pub fn probability(&self, features: &FeatureVector) -> f64 {
        sigmoid(self.artifact.calibration.logit(self.raw_logit(features)))
    }

    /// The `top` features that moved the calibrated log-odds most, largest magnitude first.
    pub fn contributions(&self, features: &FeatureVector, top: usize) -> Vec<Contribution> {
        let x = features.values();
        let a = self.artifact.calibration.a;
        let mut per_feature = [0.0; FEATURE_COUNT];
        match &self.scorer {
            Scorer::Logistic {
                folded_weights, mean, ..
            } => {
                for i in 0..FEATURE_COUNT {
                    per_feature[i] = a * folded_weights[i] * (x[i] - mean[i]);
                }
            }
            // Each split moves the log-odds from the node's to the child's: that change is the split feature's.
            Scorer::Tree(nodes) => {
                let mut previous: Option<usize> = None;
                crate::tree::walk(nodes, x, |i| {
                    if let Some(p) = previous {
                        per_feature[nodes[p].feature] += a * (nodes[i].log_odds - nodes[p].log_odds);
                    }
                    previous = Some(i);
                });
            }
        }
        let contribution = |(i, c): (usize, f64)| Contribution {
            // The artifact's names are the schema's (checked when it was loaded).
            feature: Cow::Borrowed(FEATURE_NAMES[i]),
            value: x[i],
            contribution: c,
        };
        // Largest magnitude first, ties in feature order; zeros are no contribution.
        let order = |l: &(usize, f64), r: &(usize, f64)| r.1.abs().total_cmp(&l.1.abs()).then(l.0.cmp(&r.0));
        if top == 0 {
            return Vec::new();
        }
        if top > SELECT_AT_MOST {
            let mut terms: Vec<(usize, f64)> = per_feature
                .iter()
                .enumerate()
                .map(|(i, &c)| (i, c))
                .filter(|(_, c)| *c != 0.0)
                .collect();
            terms.sort_by(order);
            return terms.into_iter().take(top).map(contribution).collect();
        }
        // The same `top` terms by selection: keep the best so far by rank, descending; a term enters only if it
        // outranks the last. Empty slots and zeros rank 0, below every term, so they never enter. Features are
        // visited largest typical contribution first: the best fill early, and later terms rarely enter (a
        // mispredicted branch each).
        let mut best = [0u128; SELECT_AT_MOST];
        for &i in &self.likely_largest_first {
            let i = usize::from(i);
            let rank = contribution_rank(i, per_feature[i]);
            if rank <= best[top - 1] {
                continue;
            }
            let mut at = top - 1;
            while at > 0 && best[at - 1] < rank {
                best[at] = best[at - 1];
                at -= 1;
            }
            best[at] = rank;
        }
        let len = best[..top].iter().take_while(|&&rank| rank != 0).count();
        best[..len]
            .iter()
            .map(|&rank| {
                let i = (u64::MAX - rank as u64) as usize;
                contribution((i, per_feature[i]))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use reprieve_core::ObjectRecord;
    use reprieve_core::features::extract;
    use reprieve_core::time::DAY;

    use super::*;

    fn thresholds(delete_max: f64) -> Thresholds {
        Thresholds {
            delete_max,
            archive_max: delete_max.max(0.2),
            retain_min: 0.5,
        }
    }

    fn flat_model() -> Model {
        let artifact = ModelArtifact {
            format: ARTIFACT_FORMAT.into(),
            name: "flat".into(),
            version: "flat-0".into(),
            created_at: 0,
            horizon_secs: 14 * DAY,
            feature_schema: FeatureSchema::current(),
            scorer: ScorerParams::Logistic {
                mean: vec![0.0; FEATURE_COUNT],
                scale: vec![1.0; FEATURE_COUNT],
                weights: vec![0.0; FEATURE_COUNT],
                intercept: 0.0,
            },
            calibration: Platt::IDENTITY,
            thresholds: thresholds(0.1),
            recent_thresholds: Some(thresholds(-1.0)),
            periodic_thresholds: Some(thresholds(0.05)),
            targets: Targets::default(),
            training: TrainingSummary::default(),
            metrics: BTreeMap::new(),
            domain: None,
        };
        Model::from_artifact(artifact).expect("valid artifact")
    }

    #[test]
    fn each_segment_gets_its_own_thresholds() {
        let at = 400 * DAY;
        let model = flat_model();
        let mut recent = ObjectRecord::with_key("img/a.png");
        recent.history.accesses = vec![at - 3 * DAY];
        let seasonal = ObjectRecord::with_key("cdn/christmas-2024/banner.png");
        let mut idle = ObjectRecord::with_key("img/b.png");
        idle.history.accesses = vec![at - 200 * DAY];
        let cases = [
            (recent, Segment::Recent, -1.0),
            (seasonal, Segment::Periodic, 0.05),
            (idle, Segment::Settled, 0.1),
        ];
        for (record, segment, delete_max) in cases {
            let f = extract(&record, at);
            assert_eq!(Segment::of(&f), segment, "{}", record.key);
            assert_eq!(model.thresholds_for(&f).delete_max, delete_max, "{}", record.key);
        }
    }

    #[test]
    fn an_invalid_segment_threshold_is_refused() {
        let mut artifact = flat_model().artifact().clone();
        artifact.periodic_thresholds = Some(Thresholds {
            delete_max: 0.9,
            archive_max: 0.1,
            retain_min: 0.5,
        });
        let err = Model::from_artifact(artifact).expect_err("delete above archive");
        assert!(err.to_string().contains("periodic_thresholds"), "{err}");
    }

    #[test]
    fn selected_contributions_are_the_sorted_ones() {
        // Weights with ties and zeros; records of every shape: the top 0..=16 by selection must be the first
        // terms of the full sort (top > 16 sorts).
        let mut artifact = flat_model().artifact().clone();
        let weights: Vec<f64> = (0..FEATURE_COUNT)
            .map(|i| [0.0, 1.0, -1.0, 0.5, 2.0, -0.5][i % 6])
            .collect();
        artifact.scorer = ScorerParams::Logistic {
            mean: (0..FEATURE_COUNT)
                .map(|i| if i % 4 == 0 { 0.0 } else { 0.25 })
                .collect(),
            scale: vec![1.0; FEATURE_COUNT],
            weights,
            intercept: 0.1,
        };
        let model = Model::from_artifact(artifact).expect("valid");
        let at = 500 * DAY;
        let keys = [
            "a/b.png",
            "cdn/xmas-2024/tmp/old_300x200.jpg",
            "x",
            "reg/app:latest@sha256:0123456789abcdef",
        ];
        for (n, key) in keys.iter().enumerate() {
            let mut r = ObjectRecord::with_key(*key);
            r.history.accesses = (0..n as i64 * 7).map(|i| at - 1 - i * 3 * DAY).collect();
            r.size = Some(1 << (10 * n));
            let f = extract(&r, at);
            let all = model.contributions(&f, FEATURE_COUNT);
            for top in 0..=SELECT_AT_MOST {
                let expected: Vec<_> = all.iter().take(top).cloned().collect();
                assert_eq!(model.contributions(&f, top), expected, "{key} top {top}");
            }
        }
    }
}
