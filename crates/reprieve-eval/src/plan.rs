//! Which cuts train and which calibrate, and the training run itself.

use reprieve_core::UnixSeconds;
use reprieve_model::ModelArtifact;
use reprieve_model::dataset::{Cut, cut_times};
use reprieve_model::train::{ExtraRows, TrainConfig, train};

use crate::error::EvalError;
use crate::replay::Replay;

/// How to cut a trace for training.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    pub horizon_secs: i64,
    pub step_secs: i64,
    /// Explicit cut times; empty: every `step` from `log_start + step` while the label window closes in the log.
    pub cuts: Vec<UnixSeconds>,
    /// How many of the latest cuts calibrate (and choose thresholds); the earlier ones train.
    pub calibration_cuts: usize,
    pub config: TrainConfig,
    pub source: String,
    pub created_at: i64,
}

impl TrainPlan {
    /// The cut times for `trace`, checked against its log span.
    pub fn cut_times<R: Replay + ?Sized>(&self, trace: &R) -> Result<Vec<UnixSeconds>, EvalError> {
        let cuts = if self.cuts.is_empty() {
            cut_times(
                trace.log_start() + self.step_secs,
                trace.log_end(),
                self.step_secs,
                self.horizon_secs,
            )
        } else {
            let mut c = self.cuts.clone();
            c.sort_unstable();
            c.dedup();
            if let Some(bad) = c
                .iter()
                .find(|&&t| t <= trace.log_start() || t + self.horizon_secs > trace.log_end())
            {
                return Err(EvalError::Plan(format!(
                    "cut {bad} is outside the log ({}..{}) or its label window [T, T+H) does not close in it",
                    trace.log_start(),
                    trace.log_end()
                )));
            }
            c
        };
        if cuts.len() < 2 {
            return Err(EvalError::Plan(format!(
                "need at least 2 cuts whose label windows close inside the log (got {}): the log spans {}s; use a \
                 shorter --horizon or --step",
                cuts.len(),
                trace.log_end() - trace.log_start()
            )));
        }
        Ok(cuts)
    }
}

/// Builds the cuts and trains: the last `calibration_cuts` calibrate (the thresholds must hold on each), the rest
/// train; a log with too few cuts for that is an error.
pub fn train_on_trace<R: Replay + ?Sized>(
    trace: &R,
    plan: &TrainPlan,
    extra: &ExtraRows,
) -> Result<(ModelArtifact, Vec<Cut>), EvalError> {
    let times = plan.cut_times(trace)?;
    let k = plan.calibration_cuts.max(1);
    if times.len() <= k {
        return Err(EvalError::Plan(format!(
            "{} cuts fit in the log, but {k} calibrate and at least one must train: use a longer log, a shorter \
             --step or --horizon, or fewer --calibration-cuts",
            times.len()
        )));
    }
    let mut config = plan.config.clone();
    config.min_calibration_cuts = k;
    let started = std::time::Instant::now();
    let cuts: Vec<Cut> = times.iter().map(|&t| trace.cut(t, plan.horizon_secs)).collect();
    tracing::info!(
        cuts = cuts.len(),
        seconds = started.elapsed().as_secs_f64(),
        "cuts built"
    );
    let (train_cuts, calibration) = cuts.split_at(cuts.len() - k);
    let artifact = train(
        train_cuts,
        calibration,
        extra,
        plan.horizon_secs,
        &plan.source,
        plan.created_at,
        &config,
    )?;
    Ok((artifact, cuts))
}
