//! The verdict policy: hard safety rules first, then thresholds on the calibrated reuse probability.
//!
//! The rules are the product's promise, so they are simple enough to read in one sitting:
//!
//! 1. Legal hold, unexpired retention, a live reference, or an object younger than the minimum age: `RETAIN`,
//!    whatever the score.
//! 2. Too little history (coverage shorter than the minimum, or unknown), an unknown owner, or features outside
//!    what the model was trained on (its score would be an extrapolation): at most `REVIEW`.
//! 3. An open precision breaker for the object's scope: never `DELETE_CANDIDATE` (it becomes `REVIEW`).
//! 4. Otherwise the probability decides: `<= delete` -> `DELETE_CANDIDATE`, `<= archive` -> `ARCHIVE`,
//!    `< retain` -> `REVIEW`, else `RETAIN`.
//!
//! Every reason that applied is listed, hard rules first, then the score's own reason.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::record::ObjectRecord;
use crate::time::{DAY, UnixSeconds};

/// What to do with an object, least to most aggressive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerdictClass {
    Retain,
    Review,
    Archive,
    DeleteCandidate,
}

impl VerdictClass {
    pub const ALL: [VerdictClass; 4] = [Self::Retain, Self::Review, Self::Archive, Self::DeleteCandidate];

    /// The wire/report name (`RETAIN`, `REVIEW`, `ARCHIVE`, `DELETE_CANDIDATE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retain => "RETAIN",
            Self::Review => "REVIEW",
            Self::Archive => "ARCHIVE",
            Self::DeleteCandidate => "DELETE_CANDIDATE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// Whether the verdict lets the object leave hot storage (archive or delete).
    pub fn lets_go(self) -> bool {
        matches!(self, Self::Archive | Self::DeleteCandidate)
    }
}

/// Why a verdict is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    LegalHold,
    RetentionActive,
    LiveReference,
    TooNew,
    InsufficientHistory,
    UnknownOwner,
    PrecisionBreaker,
    OutOfDomain,
    LikelyReused,
    Uncertain,
    UnlikelyReused,
    VeryUnlikelyReused,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 12] = [
        Self::LegalHold,
        Self::RetentionActive,
        Self::LiveReference,
        Self::TooNew,
        Self::InsufficientHistory,
        Self::UnknownOwner,
        Self::PrecisionBreaker,
        Self::OutOfDomain,
        Self::LikelyReused,
        Self::Uncertain,
        Self::UnlikelyReused,
        Self::VeryUnlikelyReused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LegalHold => "LEGAL_HOLD",
            Self::RetentionActive => "RETENTION_ACTIVE",
            Self::LiveReference => "LIVE_REFERENCE",
            Self::TooNew => "TOO_NEW",
            Self::InsufficientHistory => "INSUFFICIENT_HISTORY",
            Self::UnknownOwner => "UNKNOWN_OWNER",
            Self::PrecisionBreaker => "PRECISION_BREAKER",
            Self::OutOfDomain => "OUT_OF_DOMAIN",
            Self::LikelyReused => "LIKELY_REUSED",
            Self::Uncertain => "UNCERTAIN",
            Self::UnlikelyReused => "UNLIKELY_REUSED",
            Self::VeryUnlikelyReused => "VERY_UNLIKELY_REUSED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// Whether this reason is a hard rule (it holds an object back whatever the score).
    pub fn is_hard_rule(self) -> bool {
        matches!(
            self,
            Self::LegalHold
                | Self::RetentionActive
                | Self::LiveReference
                | Self::TooNew
                | Self::InsufficientHistory
                | Self::UnknownOwner
                | Self::PrecisionBreaker
                | Self::OutOfDomain
        )
    }
}

/// Probability cut-offs of a model, chosen at training time (see `reprieve-model`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// `p <= delete_max` may be a delete candidate.
    pub delete_max: f64,
    /// `p <= archive_max` may be archived.
    pub archive_max: f64,
    /// `p >= retain_min` is retained; between `archive_max` and `retain_min`: review.
    pub retain_min: f64,
}

impl Thresholds {
    /// Checks `delete_max <= archive_max <= retain_min`, `retain_min` in [0, 1], the others at most 1 (a
    /// negative `delete_max` or `archive_max` means the class is never given).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let ok = |x: f64| x.is_finite() && x <= 1.0;
        if !(ok(self.delete_max) && ok(self.archive_max) && ok(self.retain_min) && self.retain_min >= 0.0) {
            return Err(ValidationError::new(
                "thresholds",
                "delete_max and archive_max must be at most 1 (negative: never), retain_min in [0, 1]",
            ));
        }
        if !(self.delete_max <= self.archive_max && self.archive_max <= self.retain_min) {
            return Err(ValidationError::new(
                "thresholds",
                "must satisfy delete_max <= archive_max <= retain_min",
            ));
        }
        Ok(())
    }

    /// Thresholds that never let anything go: every score is at most REVIEW.
    pub const NEVER_LET_GO: Thresholds = Thresholds {
        delete_max: -1.0,
        archive_max: -1.0,
        retain_min: 0.5,
    };
}

/// Operator-level policy settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Objects younger than this are retained.
    pub min_age_secs: i64,
    /// History covering less than this caps the verdict at REVIEW.
    pub min_history_secs: i64,
    /// Whether an unknown owner caps the verdict at REVIEW.
    pub require_owner: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            min_age_secs: 30 * DAY,
            min_history_secs: 30 * DAY,
            require_owner: true,
        }
    }
}

/// Facts about the object's scope that are not in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeState {
    /// The precision breaker is open for the model/tenant/prefix this object falls in.
    pub breaker_open: bool,
    /// The object's features lie outside what the model was trained on: its score is an extrapolation.
    pub out_of_domain: bool,
}

/// The class and reasons for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub class: VerdictClass,
    pub reasons: Vec<ReasonCode>,
}

/// When an object was born as far as Reprieve can tell: its creation time, else its first read, else the start of
/// its complete history. The age features, the too-new rule of [`decide`] and the evaluation's labelled rows all
/// judge age by this one rule.
pub fn birth(
    created: Option<UnixSeconds>,
    first_read: Option<UnixSeconds>,
    history_since: Option<UnixSeconds>,
) -> Option<UnixSeconds> {
    created.or(first_read).or(history_since)
}

/// Applies the policy. `probability` is the calibrated P(reuse within horizon); a non-finite value is treated as
/// certain reuse (the safe side).
pub fn decide(
    config: &PolicyConfig,
    thresholds: &Thresholds,
    record: &ObjectRecord,
    probability: f64,
    at: UnixSeconds,
    scope: ScopeState,
) -> Decision {
    let mut reasons = Vec::with_capacity(3);
    // Hard rules that retain outright.
    if record.legal_hold {
        reasons.push(ReasonCode::LegalHold);
    }
    if record.retain_until.is_some_and(|t| t > at) {
        reasons.push(ReasonCode::RetentionActive);
    }
    if record.live_references > 0 {
        reasons.push(ReasonCode::LiveReference);
    }
    // Unknown creation time: the first read or the start of coverage stands in; none of them -> too new to judge.
    let first_read = record
        .history
        .accesses
        .first()
        .copied()
        .or(record.history.summary.and_then(|s| s.first));
    let born = birth(record.created, first_read, record.history.complete_since);
    if born.is_none_or(|b| at.saturating_sub(b) < config.min_age_secs) {
        reasons.push(ReasonCode::TooNew);
    }
    let retain_outright = !reasons.is_empty();

    // Hard rules that cap at REVIEW.
    let mut ceiling = VerdictClass::DeleteCandidate;
    let coverage = record.history.complete_since.map(|s| at.saturating_sub(s));
    if coverage.is_none_or(|c| c < config.min_history_secs) {
        reasons.push(ReasonCode::InsufficientHistory);
        ceiling = VerdictClass::Review;
    }
    if config.require_owner && record.owner.as_deref().is_none_or(|o| o.trim().is_empty()) {
        reasons.push(ReasonCode::UnknownOwner);
        ceiling = VerdictClass::Review;
    }
    if scope.out_of_domain {
        reasons.push(ReasonCode::OutOfDomain);
        ceiling = VerdictClass::Review;
    }

    let p = if probability.is_finite() {
        probability.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let (score_class, score_reason) = if p <= thresholds.delete_max {
        (VerdictClass::DeleteCandidate, ReasonCode::VeryUnlikelyReused)
    } else if p <= thresholds.archive_max {
        (VerdictClass::Archive, ReasonCode::UnlikelyReused)
    } else if p < thresholds.retain_min {
        (VerdictClass::Review, ReasonCode::Uncertain)
    } else {
        (VerdictClass::Retain, ReasonCode::LikelyReused)
    };

    let mut class = if retain_outright {
        VerdictClass::Retain
    } else {
        score_class.min(ceiling)
    };
    if class == VerdictClass::DeleteCandidate && scope.breaker_open {
        reasons.push(ReasonCode::PrecisionBreaker);
        class = VerdictClass::Review;
    }
    reasons.push(score_reason);
    Decision { class, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eligible(at: UnixSeconds) -> ObjectRecord {
        let mut r = ObjectRecord::with_key("a/b.png");
        r.created = Some(at - 400 * DAY);
        r.owner = Some("team-a".into());
        r.history.complete_since = Some(at - 200 * DAY);
        r
    }

    const T: Thresholds = Thresholds {
        delete_max: 0.01,
        archive_max: 0.05,
        retain_min: 0.5,
    };

    #[test]
    fn score_decides_for_an_eligible_object() {
        let at = 1_000 * DAY;
        let r = eligible(at);
        let c = PolicyConfig::default();
        let d = |p| decide(&c, &T, &r, p, at, ScopeState::default()).class;
        assert_eq!(d(0.001), VerdictClass::DeleteCandidate);
        assert_eq!(d(0.03), VerdictClass::Archive);
        assert_eq!(d(0.2), VerdictClass::Review);
        assert_eq!(d(0.9), VerdictClass::Retain);
        assert_eq!(d(f64::NAN), VerdictClass::Retain);
    }

    #[test]
    fn hard_rules_win() {
        let at = 1_000 * DAY;
        let c = PolicyConfig::default();
        let mut r = eligible(at);
        r.legal_hold = true;
        let d = decide(&c, &T, &r, 0.0, at, ScopeState::default());
        assert_eq!(d.class, VerdictClass::Retain);
        assert_eq!(d.reasons, vec![ReasonCode::LegalHold, ReasonCode::VeryUnlikelyReused]);

        let mut r = eligible(at);
        r.owner = None;
        let d = decide(&c, &T, &r, 0.0, at, ScopeState::default());
        assert_eq!(d.class, VerdictClass::Review);
        assert_eq!(d.reasons[0], ReasonCode::UnknownOwner);

        let r = eligible(at);
        let d = decide(
            &c,
            &T,
            &r,
            0.0,
            at,
            ScopeState {
                breaker_open: true,
                ..ScopeState::default()
            },
        );
        assert_eq!(d.class, VerdictClass::Review);
        assert!(d.reasons.contains(&ReasonCode::PrecisionBreaker));
        let d = decide(
            &c,
            &T,
            &r,
            0.03,
            at,
            ScopeState {
                breaker_open: true,
                ..ScopeState::default()
            },
        );
        assert_eq!(d.class, VerdictClass::Archive, "the breaker guards deletes only");

        let out = ScopeState {
            out_of_domain: true,
            ..ScopeState::default()
        };
        let d = decide(&c, &T, &r, 0.0, at, out);
        assert_eq!(d.class, VerdictClass::Review);
        assert!(d.reasons.contains(&ReasonCode::OutOfDomain));
    }

    #[test]
    fn names_round_trip() {
        for c in VerdictClass::ALL {
            assert_eq!(VerdictClass::parse(c.as_str()), Some(c));
        }
        for r in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(r.as_str()), Some(r));
        }
    }
}
