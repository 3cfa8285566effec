//! The bookkeeping of a run directory: its layout ([`run_dir`]), checkpoints ([`checkpoint`]),
//! the per-epoch metrics log ([`metrics`]) and the final report ([`report`]).
pub mod checkpoint;
pub mod metrics;
pub mod report;
pub mod run_dir;
