//! The sampled description of one combination; applying it is the pure [`crate::compose()`].
use crate::error::ConfigErrors;
use deda_core::{ClassId, PartId};
use serde::{Deserialize, Serialize};

/// One CDP pasted onto the canvas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerParams {
    /// The CDP image to paste (a real CDP or one of its synthetic edits).
    pub cdp: PartId,
    /// The class the layer contributes to the label.
    pub class: ClassId,
    /// Whether `cdp` is a synthetic edit.
    pub synthetic: bool,
    /// The CDP's longer side as a fraction of the canvas's shorter side.
    pub scale: f32,
    /// The CDP's centre as a fraction of the canvas width and height.
    pub center: (f32, f32),
    /// Mirror the CDP horizontally (before rotating).
    pub flip: bool,
    /// Rotation about the CDP's centre in degrees (counter-clockwise as seen on screen).
    pub rotation_deg: f32,
}

/// Everything needed to compose one combined sample: a CIP and the CDP layers, bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombineParams {
    /// The backdrop.
    pub cip: PartId,
    /// The CDPs, pasted in order (later layers occlude earlier ones).
    pub layers: Vec<LayerParams>,
}

impl CombineParams {
    /// Checks every layer and lists all problems at once.
    ///
    /// # Errors
    /// [`ConfigErrors`] with one line per problem.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Vec::new();
        if self.layers.is_empty() {
            problems.push("no CDP layer".to_string());
        }
        for (i, l) in self.layers.iter().enumerate() {
            if !(l.scale.is_finite() && l.scale > 0.0) {
                problems.push(format!(
                    "layer {i} ({}): scale {} must be > 0",
                    l.cdp, l.scale
                ));
            }
            if !(l.center.0.is_finite() && l.center.1.is_finite()) {
                problems.push(format!(
                    "layer {i} ({}): centre {:?} not finite",
                    l.cdp, l.center
                ));
            }
            if !l.rotation_deg.is_finite() {
                problems.push(format!("layer {i} ({}): rotation not finite", l.cdp));
            }
        }
        ConfigErrors::check("combine params", problems)
    }
}
