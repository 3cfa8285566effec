//! `deda experiment`: a real mini-benchmark — build the set, decouple it with its ground-truth
//! masks, train every method with every seed, and tabulate the results.
pub mod demo_shift;
pub mod head_to_head;
pub mod results;
pub mod runner;
pub mod spec;

pub use head_to_head::HeadToHead;
pub use results::RunRow;
pub use spec::{ExperimentSpec, SetRecipe};
