//! The scoring engine: features, model and policy in one call. Server, batch scorer and evaluation all use it,
//! so a verdict is the same whichever front door produced it.

use std::sync::Arc;

use reprieve_core::features::{FeatureVector, extract_with_stats};
use reprieve_core::policy::decide;
use reprieve_core::verdict::verdict_id;
use reprieve_core::{HistoryStats, ObjectRecord, PolicyConfig, ScopeState, UnixSeconds, Verdict};

use crate::artifact::Model;

/// How many feature contributions a verdict carries.
pub const TOP_CONTRIBUTIONS: usize = 5;

/// A model plus the operator's policy.
#[derive(Debug, Clone)]
pub struct Engine {
    pub model: Arc<Model>,
    pub policy: PolicyConfig,
}

/// A verdict and the feature vector it was computed from (for the audit trail).
#[derive(Debug, Clone)]
pub struct Scored {
    pub verdict: Verdict,
    pub features: FeatureVector,
}

impl Engine {
    pub fn new(model: Arc<Model>, policy: PolicyConfig) -> Self {
        Self { model, policy }
    }

    /// Scores `record` at `at` from its own history.
    pub fn score(&self, record: &ObjectRecord, at: UnixSeconds, scope: ScopeState) -> Scored {
        let stats = HistoryStats::from_history(&record.history, at);
        self.score_with_stats(record, &stats, scope)
    }

    /// Scores `record` with an already aggregated history (`stats.at` is the scoring time).
    pub fn score_with_stats(&self, record: &ObjectRecord, stats: &HistoryStats, scope: ScopeState) -> Scored {
        self.score_features(record, stats.at, extract_with_stats(record, stats), scope)
    }

    /// The verdict for `record` at `at` from an already extracted feature vector (e.g. one that includes facts the
    /// record does not carry, such as a container image's tags).
    pub fn score_features(
        &self,
        record: &ObjectRecord,
        at: UnixSeconds,
        features: FeatureVector,
        scope: ScopeState,
    ) -> Scored {
        let probability = self.model.probability(&features);
        let scope = ScopeState {
            out_of_domain: scope.out_of_domain || !self.model.in_domain(&features),
            ..scope
        };
        let decision = decide(
            &self.policy,
            self.model.thresholds_for(&features),
            record,
            probability,
            at,
            scope,
        );
        let version = self.model.version();
        let verdict = Verdict {
            verdict_id: verdict_id(&record.tenant, &record.key, at, version),
            tenant: record.tenant.clone(),
            key: record.key.clone(),
            class: decision.class,
            probability,
            reasons: decision.reasons,
            contributions: self.model.contributions(&features, TOP_CONTRIBUTIONS),
            model_version: version.to_string(),
            scored_at: at,
        };
        Scored { verdict, features }
    }
}
