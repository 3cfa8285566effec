//! The bookkeeping of a run directory: its layout ([`run_dir`]), checkpoints ([`checkpoint`]),
//! the per-epoch metrics log ([`metrics`]), the final report ([`report`]) and several runs'
//! curves in one picture ([`compare`]).
pub mod checkpoint;
pub mod compare;
pub mod metrics;
pub mod report;
pub mod run_dir;
