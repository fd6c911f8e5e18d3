//! The core's code as it was before it was made faster (naming, history aggregation, feature extraction), kept
//! only for tests: the faster code must give the same values, bit for bit.

#![allow(dead_code, clippy::all)]

pub mod features;
pub mod history;
pub mod naming;
