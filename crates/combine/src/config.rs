//! The knobs of the online randomized combination (paper §3, Appendix Table 6).
use crate::error::ConfigErrors;
use serde::{Deserialize, Serialize};

/// Where the backdrop of a combination comes from (the paper's module ablation, Fig. 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CipSource {
    /// A CIP of another class (De-DA, "inter-class CIP replacement"; Fig. 9 e–g).
    #[default]
    OtherClass,
    /// Any CIP except the sample's own, whatever its class (plain CIP replacement; Fig. 9 d).
    Any,
    /// The sample's own CIP: the background is kept and only the CDP changes (Fig. 9 b–c).
    Own,
}

/// Where and how large a CDP is pasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdpPlacement {
    /// Random scale, centre, flip and rotation from the ranges below (De-DA's "random
    /// combination").
    #[default]
    Random,
    /// Where the CDP was in its own image, at its own size, unflipped and unrotated
    /// ("same-size CDP at the same position"; Fig. 9 b and d).
    Original,
}

/// Probabilities and geometry ranges of the online randomized combination.
///
/// Defaults are the paper's values (Table 6) for the probabilities; the geometry ranges are
/// ours (the paper only says "randomly resized and pasted onto a random position").
/// `cip_source` and `placement` switch De-DA's modules off for the module ablation (Fig. 9);
/// their defaults are the full method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CombineConfig {
    /// Probability of replacing the real image by a combination (`p_aug`).
    pub p_aug: f64,
    /// Probability of using one of the CDP's synthetic edits instead of the real CDP (`p_syn`).
    pub p_syn: f64,
    /// Probability of pasting a second CDP from another class (`p_mix`).
    pub p_mix: f64,
    /// Range of the CDP's longer side as a fraction of the canvas's shorter side.
    pub scale_range: [f32; 2],
    /// Range of the CDP's centre, as a fraction of the canvas width and height.
    pub center_range: [f32; 2],
    /// Largest rotation in degrees; the angle is uniform in `[-max, max]`.
    pub max_rotation_deg: f32,
    /// Probability of flipping a CDP horizontally.
    pub p_flip: f64,
    /// Which CIPs a combination may use as its backdrop.
    pub cip_source: CipSource,
    /// Random or original placement of the CDPs.
    pub placement: CdpPlacement,
}

impl Default for CombineConfig {
    fn default() -> Self {
        CombineConfig {
            p_aug: 0.5,
            p_syn: 0.25,
            p_mix: 0.5,
            scale_range: [0.35, 0.85],
            center_range: [0.25, 0.75],
            max_rotation_deg: 15.0,
            p_flip: 0.5,
            cip_source: CipSource::OtherClass,
            placement: CdpPlacement::Random,
        }
    }
}

impl CombineConfig {
    /// Checks every field and lists all problems at once.
    ///
    /// # Errors
    /// [`ConfigErrors`] with one line per problem.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Vec::new();
        for (name, p) in [
            ("p_aug", self.p_aug),
            ("p_syn", self.p_syn),
            ("p_mix", self.p_mix),
            ("p_flip", self.p_flip),
        ] {
            if !(0.0..=1.0).contains(&p) {
                problems.push(format!("{name} = {p} is not a probability in [0, 1]"));
            }
        }
        let [s0, s1] = self.scale_range;
        if !(s0.is_finite() && s1.is_finite() && s0 > 0.0 && s0 <= s1) {
            problems.push(format!(
                "scale_range [{s0}, {s1}] must be finite, > 0 and ordered"
            ));
        }
        let [c0, c1] = self.center_range;
        if !(c0.is_finite() && c1.is_finite() && c0 <= c1) {
            problems.push(format!(
                "center_range [{c0}, {c1}] must be finite and ordered"
            ));
        }
        let r = self.max_rotation_deg;
        if !(r.is_finite() && (0.0..=180.0).contains(&r)) {
            problems.push(format!("max_rotation_deg = {r} must be in [0, 180]"));
        }
        ConfigErrors::check("combine config", problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_and_valid() {
        let c = CombineConfig::default();
        assert_eq!((c.p_aug, c.p_syn, c.p_mix), (0.5, 0.25, 0.5));
        c.validate().unwrap();
    }

    #[test]
    fn validate_lists_every_problem() {
        let c = CombineConfig {
            p_aug: 1.5,
            p_mix: -0.1,
            scale_range: [0.9, 0.2],
            max_rotation_deg: f32::NAN,
            ..CombineConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.problems.len(), 4, "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<CombineConfig, _> = serde_json::from_str(r#"{"p_aug":0.5,"p_agu":1}"#);
        assert!(r.is_err());
        let c: CombineConfig = serde_json::from_str(r#"{"p_aug":1.0}"#).unwrap();
        assert_eq!(c.p_mix, 0.5);
        let c: CombineConfig =
            serde_json::from_str(r#"{"cip_source":"own","placement":"original"}"#).unwrap();
        assert_eq!(
            (c.cip_source, c.placement),
            (CipSource::Own, CdpPlacement::Original)
        );
        assert!(serde_json::from_str::<CombineConfig>(r#"{"cip_source":"same"}"#).is_err());
    }
}
