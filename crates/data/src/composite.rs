//! Pasting an RGBA cut-out onto a scene crop: sampling the parameters (random crop of the
//! scene, object scale and position) is separate from applying them (a pure function).
//!
//! The cut-out is first cropped to the box of its non-zero alpha, premultiplied, resized with
//! a triangle (bilinear) filter, then composited `out = fg·α + bg·(1 − α)`. The mask is the
//! resized alpha at the pasted position (0 elsewhere): the ground truth of the composite.
use deda_core::BBox;
use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use rand::Rng;

/// Where and how large to paste, on a square canvas of side `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasteParams {
    /// Square crop of the scene, resized to the canvas.
    pub scene_crop: BBox,
    /// Canvas side in pixels.
    pub size: u32,
    /// Where the resized object goes on the canvas.
    pub object: BBox,
}

/// Ranges the parameters are drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PasteRanges {
    /// Canvas side.
    pub size: u32,
    /// Object's long side as a fraction of the canvas side, `[min, max]`.
    pub object_scale: [f64; 2],
    /// Side of the scene crop as a fraction of the scene's short side, `[min, 1]`.
    pub min_crop_fraction: f64,
}

/// Draws paste parameters for a scene of `scene_w × scene_h` and an object (already cropped to
/// its alpha box) of `obj_w × obj_h`.
pub fn sample_paste(
    rng: &mut impl Rng,
    r: &PasteRanges,
    (scene_w, scene_h): (u32, u32),
    (obj_w, obj_h): (u32, u32),
) -> PasteParams {
    let short = scene_w.min(scene_h).max(1);
    let frac = rng.random_range(r.min_crop_fraction.min(1.0)..=1.0);
    let side = ((f64::from(short) * frac).round() as u32).clamp(1, short);
    let cx = rng.random_range(0..=scene_w.saturating_sub(side));
    let cy = rng.random_range(0..=scene_h.saturating_sub(side));
    let [lo, hi] = r.object_scale;
    let scale = rng.random_range(lo.min(hi)..=hi.max(lo));
    let long = f64::from(obj_w.max(obj_h).max(1));
    let f = scale * f64::from(r.size) / long;
    let w = ((f64::from(obj_w) * f).round() as u32).clamp(1, r.size);
    let h = ((f64::from(obj_h) * f).round() as u32).clamp(1, r.size);
    let x = rng.random_range(0..=r.size - w);
    let y = rng.random_range(0..=r.size - h);
    PasteParams {
        scene_crop: BBox {
            x: cx,
            y: cy,
            w: side,
            h: side,
        },
        size: r.size,
        object: BBox { x, y, w, h },
    }
}

/// The cut-out cropped to the box of its non-zero alpha (the whole image if fully
/// transparent).
pub fn crop_to_alpha(obj: &RgbaImage) -> RgbaImage {
    match BBox::enclosing(obj.width(), obj.height(), |x, y| obj.get_pixel(x, y)[3] > 0) {
        Some(b) => imageops::crop_imm(obj, b.x, b.y, b.w, b.h).to_image(),
        None => obj.clone(),
    }
}

/// Applies `p`: returns the composite and its ground-truth mask.
pub fn apply_paste(scene: &RgbImage, obj: &RgbaImage, p: &PasteParams) -> (RgbImage, GrayImage) {
    let c = p.scene_crop;
    let crop = imageops::crop_imm(scene, c.x, c.y, c.w, c.h).to_image();
    let mut canvas = imageops::resize(&crop, p.size, p.size, FilterType::Triangle);
    let fg = imageops::resize(
        &premultiply(obj),
        p.object.w,
        p.object.h,
        FilterType::Triangle,
    );
    let mut mask = GrayImage::new(p.size, p.size);
    for (x, y, px) in fg.enumerate_pixels() {
        let (cx, cy) = (p.object.x + x, p.object.y + y);
        if cx >= p.size || cy >= p.size {
            continue;
        }
        let a = f32::from(px[3]) / 255.0;
        let bg = *canvas.get_pixel(cx, cy);
        let mix = |i: usize| {
            (f32::from(px[i]) + f32::from(bg[i]) * (1.0 - a))
                .round()
                .clamp(0.0, 255.0) as u8
        };
        canvas.put_pixel(cx, cy, Rgb([mix(0), mix(1), mix(2)]));
        mask.put_pixel(cx, cy, Luma([px[3]]));
    }
    (canvas, mask)
}

/// Colour multiplied by alpha, so that resizing does not bleed the colour of transparent
/// pixels into the edge.
fn premultiply(img: &RgbaImage) -> RgbaImage {
    let mut out = img.clone();
    for px in out.pixels_mut() {
        let a = u16::from(px[3]);
        let m = |v: u8| ((u16::from(v) * a + 127) / 255) as u8;
        *px = Rgba([m(px[0]), m(px[1]), m(px[2]), px[3]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};

    #[test]
    fn opaque_object_replaces_scene_and_mask_marks_it() {
        let scene = RgbImage::from_pixel(40, 30, Rgb([0, 0, 255]));
        let obj = RgbaImage::from_pixel(10, 10, Rgba([255, 0, 0, 255]));
        let p = PasteParams {
            scene_crop: BBox {
                x: 5,
                y: 0,
                w: 30,
                h: 30,
            },
            size: 20,
            object: BBox {
                x: 4,
                y: 6,
                w: 8,
                h: 8,
            },
        };
        let (img, mask) = apply_paste(&scene, &obj, &p);
        assert_eq!(img.get_pixel(6, 8), &Rgb([255, 0, 0]));
        assert_eq!(img.get_pixel(0, 0), &Rgb([0, 0, 255]));
        assert_eq!(mask.get_pixel(6, 8)[0], 255);
        assert_eq!(mask.get_pixel(0, 0)[0], 0);
        assert_eq!(mask.pixels().filter(|m| m[0] > 0).count(), 64);
    }

    #[test]
    fn sampled_object_fits_and_respects_the_scale_range() {
        let r = PasteRanges {
            size: 64,
            object_scale: [0.4, 0.7],
            min_crop_fraction: 0.6,
        };
        for i in 0..200 {
            let p = sample_paste(
                &mut rng_for(1, Stream::Build, &[i]),
                &r,
                (160, 100),
                (30, 50),
            );
            assert!(p.object.x + p.object.w <= 64 && p.object.y + p.object.h <= 64);
            let long = p.object.h;
            assert!((25..=45).contains(&long), "long side {long}");
            assert!(p.scene_crop.w >= 60 && p.scene_crop.x + p.scene_crop.w <= 160);
        }
    }
}
