//! Strict comparison helpers shared by the scheduler parity tests: NaN or ∞ on either side,
//! or a length difference, fails; otherwise the largest absolute difference is returned.
#![allow(dead_code)]
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

/// Largest |a − b|; panics (naming `what`) on a length difference or a non-finite value.
pub fn max_abs_strict(what: &str, ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths differ");
    let mut worst = 0f32;
    for (k, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert!(a.is_finite(), "{what}[{k}]: ours is {a}");
        assert!(b.is_finite(), "{what}[{k}]: reference is {b}");
        worst = worst.max((a - b).abs());
    }
    worst
}
