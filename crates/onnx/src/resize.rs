//! Pillow-exact bilinear resize: moved to [`deda_core::pil_resize`], re-exported here for the
//! ONNX models and `deda_onnx::resize` callers.
pub use deda_core::pil_resize::{resize_bilinear_pil, resize_gray_pil, resize_rgb_pil};
