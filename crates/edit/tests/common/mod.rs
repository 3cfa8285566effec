//! Fixture reading shared by the scheduler parity tests; comparisons go through deda-parity.
#![allow(dead_code)]
use deda_parity::Tolerance;
use serde_json::Value;
use std::path::PathBuf;

/// The fixture `tests/fixtures/<name>`, parsed.
pub fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A JSON array of numbers as f32.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")) as f32)
        .collect()
}

/// A JSON array of arrays of numbers.
pub fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(floats)
        .collect()
}

/// The tolerance of one run: [`Tolerance::from_spread`] of its recorded `spread`.
pub fn run_tolerance(run: &Value) -> Tolerance {
    let spread =
        deda_parity::Spread::from_json(run).unwrap_or_else(|e| panic!("run {}: {e}", run["name"]));
    Tolerance::from_spread(spread.spread)
}

/// σ: one f32 rounding apart at most (torch's vectorised sqrt is not correctly rounded).
pub const SIGMA_TOLERANCE: Tolerance = Tolerance {
    abs: 0.0,
    rel: 1e-6,
};
