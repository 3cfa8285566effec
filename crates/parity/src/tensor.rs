//! The tch adapter: tensors become flat f64 arrays of their shape.
use tch::{Device, Kind, Tensor};

use crate::{assert_close, Report, Tolerance};

/// The shape and the row-major f64 values of `t` (any kind, any device).
pub fn to_f64(t: &Tensor) -> (Vec<usize>, Vec<f64>) {
    let shape = t.size().iter().map(|&d| d as usize).collect();
    let flat = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Double)
        .contiguous()
        .reshape([-1]);
    let values = Vec::<f64>::try_from(&flat).unwrap_or_else(|e| panic!("tensor to f64: {e}"));
    (shape, values)
}

/// [`assert_close`] of two tensors: same shape, every element within `tol`, no NaN/Inf.
#[track_caller]
pub fn assert_tensor_close(what: &str, got: &Tensor, want: &Tensor, tol: Tolerance) -> Report {
    let (gs, g) = to_f64(got);
    let (ws, w) = to_f64(want);
    assert_eq!(gs, ws, "parity {what}: shape {gs:?} vs reference {ws:?}");
    assert_close(what, &g, &w, &gs, tol)
}
