//! `deda experiment`: a real mini-benchmark — build the set, decouple it with its ground-truth
//! masks, train every method with every seed, and tabulate the results.
pub mod results;
pub mod spec;

pub use results::RunRow;
pub use spec::{ExperimentSpec, SetRecipe};
