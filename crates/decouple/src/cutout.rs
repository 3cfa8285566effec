//! Decoupling one image: (image, object mask) → CDP (cut-out) + CIP (filled background).
use crate::alpha_pyramid::pad_rgb;
use crate::dilate::dilate;
use crate::error::{Error, Result};
use crate::options::DecoupleOptions;
use deda_core::BBox;
use image::{GrayImage, Luma, RgbImage, RgbaImage};

/// The two parts of a decoupled image.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoupled {
    /// Class-dependent part: the image cropped to `bbox`, with the soft mask as alpha.
    pub cdp: RgbaImage,
    /// The box of the object pixels (mask above the threshold) in image coordinates.
    pub bbox: BBox,
    /// Class-independent part: the full image with the (dilated) object hole filled.
    pub cip: RgbImage,
    /// Number of object pixels (mask above the threshold).
    pub mask_area: u64,
    /// `mask_area` as a fraction of the image's pixels.
    pub coverage: f32,
}

/// What decoupling one image gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The image was split into a CDP and a CIP.
    Decoupled(Box<Decoupled>),
    /// The mask covers less than `min_area_fraction` of the image: keep the image real-only.
    NothingFound {
        /// Fraction of the image the mask covers.
        coverage: f32,
    },
    /// The mask covers more than `max_area_fraction`: no background is left to reuse.
    TooLarge {
        /// Fraction of the image the mask covers.
        coverage: f32,
    },
}

/// Splits `img` into a CDP and a CIP along the soft object `mask` (0 = background, 255 = object).
///
/// The CDP is `img` cropped to the box of the pixels where `mask > mask_threshold`, with alpha
/// = `mask`. The CIP is `img` with alpha `255 − dilate(mask)` padded by the alpha pyramid
/// ([`pad_rgb`]), so the object's hole (grown by the dilation radius) is filled with smooth
/// background colours and every pixel outside the grown hole is kept exactly.
///
/// # Errors
/// [`Error::SizeMismatch`] naming both sizes if the mask and image sizes differ;
/// [`Error::InvalidOptions`] if `opts` do not validate; [`Error::EmptyImage`] for 0-pixel input.
pub fn decouple_image(img: &RgbImage, mask: &GrayImage, opts: &DecoupleOptions) -> Result<Outcome> {
    opts.validate()?;
    let (w, h) = img.dimensions();
    if mask.dimensions() != (w, h) {
        return Err(Error::SizeMismatch {
            what: "mask",
            image_width: w,
            image_height: h,
            other_width: mask.width(),
            other_height: mask.height(),
        });
    }
    if w == 0 || h == 0 {
        return Err(Error::EmptyImage {
            what: "image to decouple",
        });
    }
    let is_object = |v: u8| v > opts.mask_threshold;
    let mask_area = mask.as_raw().iter().filter(|&&v| is_object(v)).count() as u64;
    let coverage = (mask_area as f64 / (u64::from(w) * u64::from(h)) as f64) as f32;
    if coverage > opts.max_area_fraction {
        return Ok(Outcome::TooLarge { coverage });
    }
    let bbox = BBox::enclosing(w, h, |x, y| is_object(mask.get_pixel(x, y).0[0]));
    let Some(bbox) = bbox.filter(|_| coverage >= opts.min_area_fraction) else {
        return Ok(Outcome::NothingFound { coverage });
    };
    let cdp = crop_with_alpha(img, mask, bbox);
    let cip = fill_hole(img, mask, opts.hole_dilation_radius(w, h))?;
    Ok(Outcome::Decoupled(Box::new(Decoupled {
        cdp,
        bbox,
        cip,
        mask_area,
        coverage,
    })))
}

/// The image inside `bbox` with `mask` as alpha.
fn crop_with_alpha(img: &RgbImage, mask: &GrayImage, bbox: BBox) -> RgbaImage {
    RgbaImage::from_fn(bbox.w, bbox.h, |x, y| {
        let (sx, sy) = (bbox.x + x, bbox.y + y);
        let [r, g, b] = img.get_pixel(sx, sy).0;
        image::Rgba([r, g, b, mask.get_pixel(sx, sy).0[0]])
    })
}

/// The CIP: `img` with the hole `dilate(mask, radius)` filled by the alpha pyramid.
///
/// # Errors
/// As [`pad_rgb`].
pub fn fill_hole(img: &RgbImage, mask: &GrayImage, radius: u32) -> Result<RgbImage> {
    let hole = dilate(mask, radius);
    let mut keep = hole;
    keep.pixels_mut().for_each(|p| *p = Luma([255 - p.0[0]]));
    pad_rgb(img, &keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect_mask(w: u32, h: u32, x0: u32, y0: u32, x1: u32, y1: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            Luma([if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                255
            } else {
                0
            }])
        })
    }

    fn textured(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, 128]))
    }

    fn decoupled(o: Outcome) -> Decoupled {
        match o {
            Outcome::Decoupled(d) => *d,
            other => panic!("expected Decoupled, got {other:?}"),
        }
    }

    #[test]
    fn cdp_is_the_box_with_the_mask_as_alpha() {
        let img = textured(50, 40);
        let mut mask = rect_mask(50, 40, 10, 8, 30, 20);
        mask.put_pixel(10, 8, Luma([200]));
        let d = decoupled(decouple_image(&img, &mask, &DecoupleOptions::default()).unwrap());
        assert_eq!(
            d.bbox,
            BBox {
                x: 10,
                y: 8,
                w: 20,
                h: 12
            }
        );
        assert_eq!(d.cdp.dimensions(), (20, 12));
        assert_eq!(d.cdp.get_pixel(0, 0).0[3], 200);
        assert_eq!(d.cdp.get_pixel(5, 5).0[..3], img.get_pixel(15, 13).0);
        assert_eq!(d.mask_area, 240);
        assert!((d.coverage - 240.0 / 2000.0).abs() < 1e-6);
    }

    #[test]
    fn cip_keeps_pixels_outside_the_dilated_hole() {
        let img = textured(60, 50);
        let mask = rect_mask(60, 50, 20, 15, 35, 30);
        let opts = DecoupleOptions::default();
        let r = opts.hole_dilation_radius(60, 50);
        assert_eq!(r, 1);
        let d = decoupled(decouple_image(&img, &mask, &opts).unwrap());
        for (x, y, p) in d.cip.enumerate_pixels() {
            let inside = (20 - r..35 + r).contains(&x) && (15 - r..30 + r).contains(&y);
            if !inside {
                assert_eq!(p, img.get_pixel(x, y), "changed at ({x}, {y})");
            }
        }
    }

    #[test]
    fn empty_and_tiny_masks_find_nothing() {
        let img = textured(100, 100);
        let opts = DecoupleOptions::default();
        let empty = GrayImage::new(100, 100);
        assert!(matches!(
            decouple_image(&img, &empty, &opts).unwrap(),
            Outcome::NothingFound { coverage } if coverage == 0.0
        ));
        let mut dot = GrayImage::new(100, 100);
        dot.put_pixel(3, 3, Luma([255])); // 1e-4 of the image < 1e-3
        assert!(matches!(
            decouple_image(&img, &dot, &opts).unwrap(),
            Outcome::NothingFound { .. }
        ));
    }

    #[test]
    fn full_mask_is_too_large() {
        let img = textured(20, 20);
        let full = GrayImage::from_pixel(20, 20, Luma([255]));
        let out = decouple_image(&img, &full, &DecoupleOptions::default()).unwrap();
        assert_eq!(out, Outcome::TooLarge { coverage: 1.0 });
    }

    #[test]
    fn wrong_mask_size_names_both_sizes() {
        let err = decouple_image(
            &textured(32, 24),
            &GrayImage::new(24, 32),
            &DecoupleOptions::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("24x32") && msg.contains("32x24"), "{msg}");
    }
}
