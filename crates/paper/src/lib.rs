//! The paper's tables and figures as data, and our runs' results beside the published numbers.
//!
//! Each table is a layout (`configs/paper_tables/<table>.csv`, embedded at build time): one line
//! per cell with its row and column labels, the recipe that produces it (a stem under
//! `configs/paper/<table>/`), the metric read from the run, and the paper's value. A cell's runs
//! live in `<runs>/<table>_<stem>` (the recipe's own seed) and `<runs>/<table>_<stem>_seed<N>`
//! (further seeds); [`collect`] reads their `metrics.jsonl` whatever state they are in, so a
//! table can be watched while it fills in, and [`render_markdown`] writes it in the paper's
//! layout with the paper's number beside ours.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod error;
mod layout;
mod overrides;
mod render;
mod runs;

pub use error::{Error, Result};
pub use layout::{Cell, Metric, RecipeRef, TableId, TableLayout};
pub use overrides::{apply_overrides, Override};
pub use render::{render_csv, render_markdown};
pub use runs::{collect, run_complete, CellResult, CellState, RunStatus, TableResult};
