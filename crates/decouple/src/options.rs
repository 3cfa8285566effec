//! Options of the decouple step.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Mask values above this count as object for the box and the area (half of 255).
pub const DEFAULT_MASK_THRESHOLD: u8 = 127;
/// Hole dilation for the CIP as a fraction of the image's short side.
pub const DEFAULT_HOLE_DILATION_FRACTION: f32 = 0.02;
/// Masks covering less than this fraction of the image count as "nothing found".
pub const DEFAULT_MIN_AREA_FRACTION: f32 = 0.001;
/// Masks covering more than this fraction leave no background: "too large".
pub const DEFAULT_MAX_AREA_FRACTION: f32 = 0.95;
/// Images whose long side exceeds this are segmented and filled at this long side (the
/// paper's data sets are below 1024 px; a 12000 × 9000 photo is worked on at 4096 × 3072).
pub const DEFAULT_MAX_WORKING_SIDE: u32 = 4096;
/// Smallest accepted working side.
pub const MIN_WORKING_SIDE: u32 = 64;
/// Images with more pixels than this are refused before decoding (128 Mpx).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = deda_core::image_io::DEFAULT_MAX_PIXELS;

/// How an image and its object mask are turned into a CDP and a CIP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoupleOptions {
    /// Mask values strictly above this are object pixels (for the CDP's box and the area).
    pub mask_threshold: u8,
    /// The hole is grown by `round(fraction · min(W, H))` pixels (square max filter) before it
    /// is filled, so that halos of the object do not leak into the CIP.
    pub hole_dilation_fraction: f32,
    /// Masks whose object area is below this fraction of the image give
    /// [`crate::Outcome::NothingFound`].
    pub min_area_fraction: f32,
    /// Masks whose object area is above this fraction give [`crate::Outcome::TooLarge`].
    pub max_area_fraction: f32,
    /// Long side of the working resolution: a larger image is segmented and its hole filled
    /// at this size; the CDP is cut from the full-resolution image with the mask upsampled,
    /// and the CIP keeps every full-resolution pixel outside the upsampled hole (see
    /// [`crate::working`]). Left out of the config hash at its default.
    #[serde(skip_serializing_if = "is_default_working_side")]
    pub max_working_side: u32,
    /// Images with more pixels are refused before decoding (a listed failure). Left out of
    /// the config hash at its default.
    #[serde(skip_serializing_if = "is_default_image_pixels")]
    pub max_image_pixels: u64,
}

fn is_default_working_side(v: &u32) -> bool {
    *v == DEFAULT_MAX_WORKING_SIDE
}

fn is_default_image_pixels(v: &u64) -> bool {
    *v == DEFAULT_MAX_IMAGE_PIXELS
}

impl Default for DecoupleOptions {
    fn default() -> Self {
        DecoupleOptions {
            mask_threshold: DEFAULT_MASK_THRESHOLD,
            hole_dilation_fraction: DEFAULT_HOLE_DILATION_FRACTION,
            min_area_fraction: DEFAULT_MIN_AREA_FRACTION,
            max_area_fraction: DEFAULT_MAX_AREA_FRACTION,
            max_working_side: DEFAULT_MAX_WORKING_SIDE,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
        }
    }
}

impl DecoupleOptions {
    /// Checks every field and lists every problem at once.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] with one line per problem.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        let in_unit = |v: f32| (0.0..=1.0).contains(&v);
        if !(0.0..=0.5).contains(&self.hole_dilation_fraction) {
            problems.push(format!(
                "hole_dilation_fraction = {} must be in [0, 0.5]",
                self.hole_dilation_fraction
            ));
        }
        if !in_unit(self.min_area_fraction) {
            problems.push(format!(
                "min_area_fraction = {} must be in [0, 1]",
                self.min_area_fraction
            ));
        }
        if !in_unit(self.max_area_fraction) {
            problems.push(format!(
                "max_area_fraction = {} must be in [0, 1]",
                self.max_area_fraction
            ));
        }
        if self.min_area_fraction >= self.max_area_fraction {
            problems.push(format!(
                "min_area_fraction = {} must be below max_area_fraction = {}",
                self.min_area_fraction, self.max_area_fraction
            ));
        }
        if self.max_working_side < MIN_WORKING_SIDE {
            problems.push(format!(
                "max_working_side = {} must be at least {MIN_WORKING_SIDE}",
                self.max_working_side
            ));
        }
        if self.max_image_pixels == 0 {
            problems.push("max_image_pixels must be positive".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }

    /// Dilation radius in pixels for an image of this size.
    pub fn hole_dilation_radius(&self, width: u32, height: u32) -> u32 {
        (self.hole_dilation_fraction.max(0.0) * width.min(height) as f32).round() as u32
    }

    /// The decode limits for input images: [`Self::max_image_pixels`], and room for the
    /// decoder to allocate 4 bytes per pixel (at least the core default).
    pub fn decode_limits(&self) -> deda_core::image_io::DecodeLimits {
        deda_core::image_io::DecodeLimits {
            max_pixels: self.max_image_pixels,
            max_alloc: self
                .max_image_pixels
                .saturating_mul(4)
                .max(deda_core::image_io::DEFAULT_MAX_ALLOC),
        }
    }

    /// Canonical JSON of the options (for the stage's config hash).
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        DecoupleOptions::default().validate().unwrap();
    }

    #[test]
    fn validate_lists_every_problem() {
        let o = DecoupleOptions {
            hole_dilation_fraction: f32::NAN,
            min_area_fraction: -0.1,
            max_area_fraction: 1.5,
            ..DecoupleOptions::default()
        };
        let Err(Error::InvalidOptions { problems }) = o.validate() else {
            panic!("accepted")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: std::result::Result<DecoupleOptions, _> =
            serde_json::from_str(r#"{"mask_treshold": 3}"#);
        assert!(r.is_err());
    }

    #[test]
    fn default_limits_leave_the_config_hash_unchanged() {
        let json = DecoupleOptions::default().canonical_json();
        assert_eq!(
            json,
            r#"{"mask_threshold":127,"hole_dilation_fraction":0.02,"min_area_fraction":0.001,"max_area_fraction":0.95}"#
        );
        let smaller = DecoupleOptions {
            max_working_side: 1024,
            ..DecoupleOptions::default()
        };
        assert!(smaller
            .canonical_json()
            .contains("\"max_working_side\":1024"));
        let bad = DecoupleOptions {
            max_working_side: 10,
            max_image_pixels: 0,
            ..DecoupleOptions::default()
        };
        let Err(Error::InvalidOptions { problems }) = bad.validate() else {
            panic!("accepted")
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn radius_is_two_percent_of_the_short_side() {
        assert_eq!(
            DecoupleOptions::default().hole_dilation_radius(640, 480),
            10
        );
    }
}
