//! The one comparison used by every parity test of deda.
//!
//! - [`compare`] checks **every** element of two flat arrays of the same shape: an element passes
//!   when `|got − want| <= abs + rel·|want|`; a NaN or ±Inf on either side fails, wherever it is
//!   (no maximum that silently drops NaN).
//! - The [`Report`] gives the number of differing elements, the max abs and max rel error and the index (row-major, and as a
//!   multi-index of the shape) of the worst element, i.e. the one nearest to or furthest past its
//!   bound.
//! - A [`Tolerance`] is derived from the reference's own spread, stored beside each fixture
//!   ([`Tolerance::from_spread`], [`Spread`]): the scripts under `tools/parity/` run the reference
//!   in float64 and in float32 and record `max |f32 − f64| / (1 + |f64|)`.
//!
//! The `tch` feature adds `tensor::assert_tensor_close` for crates that already use tch.
use std::fmt;
use std::path::Path;

#[cfg(feature = "tch")]
pub mod tensor;

/// Tolerances are this many times the reference's own spread...
pub const SPREAD_FACTOR: f64 = 4.0;
/// ...but never below this (two float32 ulps at 1.0), so a reference that is exact in float32
/// does not demand bit equality from a different order of float32 operations.
pub const FLOOR: f64 = 2.0 * f32::EPSILON as f64;

/// `|got − want| <= abs + rel·|want|`, elementwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

impl Tolerance {
    /// Exact equality (integers, labels, token ids, bytes).
    pub const EXACT: Tolerance = Tolerance { abs: 0.0, rel: 0.0 };

    /// `abs = rel = max(SPREAD_FACTOR · spread, FLOOR)`.
    pub fn from_spread(spread: f64) -> Tolerance {
        let t = (SPREAD_FACTOR * spread).max(FLOOR);
        Tolerance { abs: t, rel: t }
    }

    /// An absolute-only tolerance (quantised outputs such as 8-bit pixels).
    pub fn abs(abs: f64) -> Tolerance {
        Tolerance { abs, rel: 0.0 }
    }

    fn bound(&self, want: f64) -> f64 {
        self.abs + self.rel * want.abs()
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "abs {:.1e} + rel {:.1e}", self.abs, self.rel)
    }
}

/// Values the comparison accepts (converted to f64 exactly).
pub trait Value: Copy {
    fn to_f64(self) -> f64;
}

macro_rules! value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
value!(f32, f64, u8, u16, u32, i32, i64, usize);

/// What a comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub len: usize,
    /// How many elements differ at all (`got != want`), within tolerance or not: for quantised
    /// outputs (8-bit pixels) the size of the disagreement, not just its depth.
    pub differing: usize,
    pub max_abs: f64,
    /// Largest `|got − want| / |want|` over the elements whose reference is not 0.
    pub max_rel: f64,
    /// Row-major index of the worst element (largest `|got − want| / bound`).
    pub worst: usize,
    /// The same as a multi-index of the shape.
    pub worst_at: Vec<usize>,
    pub worst_got: f64,
    pub worst_want: f64,
    pub tolerance: Tolerance,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} values ({} differ): max abs {:.3e}, max rel {:.3e}; worst at {:?} (got {:e}, want {:e}); tolerance {}",
            self.len,
            self.differing,
            self.max_abs,
            self.max_rel,
            self.worst_at,
            self.worst_got,
            self.worst_want,
            self.tolerance
        )
    }
}

/// Why two arrays are not close.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Mismatch {
    #[error("shape {got:?} vs reference {want:?}")]
    Shape { got: Vec<usize>, want: Vec<usize> },
    #[error("{got} values for shape {shape:?} (reference: {want})")]
    Len {
        got: usize,
        want: usize,
        shape: Vec<usize>,
    },
    #[error("non-finite value at {at:?}: got {got}, want {want}")]
    NonFinite { at: Vec<usize>, got: f64, want: f64 },
    #[error("{count} of {} values out of tolerance; {report}", report.len)]
    OutOfTolerance { count: usize, report: Report },
    #[error("cannot read the spread from {path}: {reason}")]
    Spread { path: String, reason: String },
}

/// Row-major multi-index of `flat` in `shape`.
pub fn unravel(flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut rest = flat;
    let mut at = vec![0; shape.len()];
    for (i, &n) in shape.iter().enumerate().rev() {
        if n > 0 {
            at[i] = rest % n;
            rest /= n;
        }
    }
    at
}

/// Compares every element of `got` with `want` (both row-major, of `shape`).
pub fn compare<G: Value, W: Value>(
    got: &[G],
    want: &[W],
    shape: &[usize],
    tol: Tolerance,
) -> Result<Report, Mismatch> {
    let n: usize = shape.iter().product();
    if got.len() != n || want.len() != n {
        return Err(Mismatch::Len {
            got: got.len(),
            want: want.len(),
            shape: shape.to_vec(),
        });
    }
    let mut report = Report {
        len: n,
        differing: 0,
        max_abs: 0.0,
        max_rel: 0.0,
        worst: 0,
        worst_at: unravel(0, shape),
        worst_got: got.first().map_or(0.0, |v| v.to_f64()),
        worst_want: want.first().map_or(0.0, |v| v.to_f64()),
        tolerance: tol,
    };
    let mut worst_ratio = -1.0;
    let mut count = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        if !g.is_finite() || !w.is_finite() {
            return Err(Mismatch::NonFinite {
                at: unravel(i, shape),
                got: g,
                want: w,
            });
        }
        let d = (g - w).abs();
        let bound = tol.bound(w);
        report.differing += usize::from(d > 0.0);
        report.max_abs = report.max_abs.max(d);
        if w != 0.0 {
            report.max_rel = report.max_rel.max(d / w.abs());
        }
        let ratio = if bound > 0.0 {
            d / bound
        } else if d > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        if d > bound {
            count += 1;
        }
        if ratio > worst_ratio {
            worst_ratio = ratio;
            report.worst = i;
            report.worst_got = g;
            report.worst_want = w;
        }
    }
    report.worst_at = unravel(report.worst, shape);
    if count > 0 {
        return Err(Mismatch::OutOfTolerance { count, report });
    }
    Ok(report)
}

/// [`compare`] that prints the report under `what` and panics, naming `what`, on any mismatch.
#[track_caller]
pub fn assert_close<G: Value, W: Value>(
    what: &str,
    got: &[G],
    want: &[W],
    shape: &[usize],
    tol: Tolerance,
) -> Report {
    match compare(got, want, shape, tol) {
        Ok(r) => {
            println!("parity {what}: {r}");
            r
        }
        Err(e) => panic!("parity {what}: {e}"),
    }
}

/// [`assert_close`] of two scalars.
#[track_caller]
pub fn assert_scalar_close(what: &str, got: f64, want: f64, tol: Tolerance) -> Report {
    assert_close(what, &[got], &[want], &[1], tol)
}

/// The reference's own spread of one fixture: `max |f32 − f64| / (1 + |f64|)` over its outputs,
/// as the fixture script measured it, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub spread: f64,
    pub how: String,
}

impl Spread {
    /// Reads `{"spread": <f64>, "how": "..."}` (a fixture's `spread.json`), or the same two keys
    /// from any JSON object (e.g. a fixture's `meta.json`).
    pub fn read(path: &Path) -> Result<Spread, Mismatch> {
        let err = |reason: String| Mismatch::Spread {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        Spread::from_json(&v).map_err(err)
    }

    /// The `spread` and `how` keys of a JSON object.
    pub fn from_json(v: &serde_json::Value) -> Result<Spread, String> {
        let spread = v
            .get("spread")
            .and_then(|s| s.as_f64())
            .ok_or("no number \"spread\"")?;
        if !spread.is_finite() || spread < 0.0 {
            return Err(format!("spread {spread} is not a finite number >= 0"));
        }
        let how = v
            .get("how")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        Ok(Spread { spread, how })
    }

    /// [`Tolerance::from_spread`] of this spread.
    pub fn tolerance(&self) -> Tolerance {
        Tolerance::from_spread(self.spread)
    }
}

/// [`Spread::read`] + [`Spread::tolerance`]; panics naming the file (tests only).
#[track_caller]
pub fn fixture_tolerance(path: &Path) -> Tolerance {
    let s = Spread::read(path).unwrap_or_else(|e| panic!("{e}"));
    let t = s.tolerance();
    println!(
        "fixture {}: reference spread {:.3e} ({}) -> tolerance {t}",
        path.display(),
        s.spread,
        s.how
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_anywhere_fails() {
        let t = Tolerance::from_spread(1e-3);
        for pos in 0..4 {
            let mut g = vec![1.0f32; 4];
            g[pos] = f32::NAN;
            let e = compare(&g, &[1.0f32; 4], &[2, 2], t).unwrap_err();
            match &e {
                Mismatch::NonFinite { at, got, want } => {
                    assert_eq!(at, &unravel(pos, &[2, 2]));
                    assert!(got.is_nan());
                    assert_eq!(*want, 1.0);
                }
                other => panic!("{other}"),
            }
        }
        let e = compare(&[1.0f64], &[f64::NAN], &[1], t).unwrap_err();
        assert!(matches!(e, Mismatch::NonFinite { .. }));
        let e = compare(&[f64::INFINITY], &[f64::INFINITY], &[1], t).unwrap_err();
        assert!(matches!(e, Mismatch::NonFinite { .. }));
    }

    #[test]
    fn reports_the_worst_element_and_counts() {
        let want = [1.0f64, 2.0, -3.0, 4.0, 5.0, 6.0];
        let got = [1.0f64, 2.0 + 1e-9, -3.0, 4.0 + 1e-3, 5.0, 6.0 - 2e-3];
        let t = Tolerance::abs(1.5e-3);
        let e = compare(&got, &want, &[2, 3], t).unwrap_err();
        match e {
            Mismatch::OutOfTolerance { count, report } => {
                assert_eq!(count, 1);
                assert_eq!(report.worst, 5);
                assert_eq!(report.worst_at, vec![1, 2]);
                assert!((report.max_abs - 2e-3).abs() < 1e-12);
                assert!((report.max_rel - 2e-3 / 6.0).abs() < 1e-12);
            }
            other => panic!("{other}"),
        }
        let r = compare(&got, &want, &[2, 3], Tolerance::abs(3e-3)).unwrap();
        assert_eq!(r.worst_at, vec![1, 2]);
        assert_eq!(r.differing, 3);
    }

    #[test]
    fn relative_part_scales_with_the_reference() {
        let t = Tolerance {
            abs: 0.0,
            rel: 1e-3,
        };
        assert!(compare(&[1000.5f64], &[1000.0f64], &[1], t).is_ok());
        assert!(compare(&[1.5f64], &[1.0f64], &[1], t).is_err());
    }

    #[test]
    fn exact_means_exact_and_lengths_are_checked() {
        let r = compare(&[1u8, 2, 3], &[1u8, 2, 3], &[3], Tolerance::EXACT).unwrap();
        assert_eq!((r.differing, r.max_abs), (0, 0.0));
        let r = compare(&[0u8, 2, 255], &[1u8, 2, 254], &[3], Tolerance::abs(1.0)).unwrap();
        assert_eq!((r.differing, r.max_abs), (2, 1.0));
        assert!(compare(&[1u8, 2, 4], &[1u8, 2, 3], &[3], Tolerance::EXACT).is_err());
        assert!(matches!(
            compare(&[1u8, 2], &[1u8, 2, 3], &[3], Tolerance::EXACT),
            Err(Mismatch::Len { .. })
        ));
    }

    #[test]
    fn tolerance_from_spread_has_a_floor() {
        assert_eq!(Tolerance::from_spread(0.0).abs, FLOOR);
        assert_eq!(Tolerance::from_spread(1e-5).rel, 4e-5);
    }

    #[test]
    fn spread_is_read_from_json() {
        let v = serde_json::json!({"spread": 2.5e-7, "how": "f64 vs f32"});
        let s = Spread::from_json(&v).unwrap();
        assert_eq!(s.spread, 2.5e-7);
        assert!(Spread::from_json(&serde_json::json!({"spread": -1.0})).is_err());
        assert!(Spread::from_json(&serde_json::json!({})).is_err());
    }
}
