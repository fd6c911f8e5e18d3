//! The sled feedback and audit store (audit trail, actions, restores, realized precision, the breaker).
//!
//! Not built yet: tracked by the feedback-loop issue. Nothing depends on this crate until then.
