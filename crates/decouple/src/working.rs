//! Bounded working resolution for very large images.
//!
//! An image whose long side exceeds [`DecoupleOptions::max_working_side`] is not segmented and
//! filled at full size (the alpha pyramid alone takes about 50 bytes per pixel). Instead:
//!
//! 1. the image is box-averaged down to the working size ([`working_size`], [`downscale`]);
//! 2. the segmenter sees the working image; a mask at full size (ground-truth masks) is
//!    box-averaged down as well;
//! 3. "nothing found" / "too large" are decided on the working mask;
//! 4. the **CDP** is cut from the *full-resolution* image: the working mask is upsampled
//!    bilinearly (pixel centres aligned) into alpha, and the box and the area are those of the
//!    upsampled alpha, so the object keeps every photographed pixel and only its matte is
//!    interpolated;
//! 5. the **CIP** is the full-resolution image in place: the hole (the working mask dilated by
//!    the same fraction of the short side) is filled by the alpha pyramid at the working size,
//!    and both the hole and the fill are upsampled bilinearly and composited over the
//!    original, `out = C·(1 − hole) + fill·hole`. Pixels outside the upsampled hole are kept
//!    exactly; the fill is a smooth extrapolation, which loses nothing at working resolution.
//!
//! Memory is the full-resolution RGB image (3 bytes per pixel, reused as the CIP), the CDP,
//! and about 60 bytes per *working* pixel.
use crate::cutout::{Decoupled, Outcome};
use crate::dilate::dilate;
use crate::error::{Error, Result};
use crate::options::DecoupleOptions;
use crate::pad_rgb;
use deda_core::BBox;
use image::{GrayImage, ImageBuffer, Luma, Pixel, RgbImage, RgbaImage};

/// The working size of a `width × height` image: unchanged if its long side is at most
/// `max_side`, else scaled so that the long side is `max_side` (each side at least 1).
pub fn working_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_side || long == 0 {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(long);
    let side = |n: u32| ((f64::from(n) * scale).round() as u32).clamp(1, max_side);
    (side(width), side(height))
}

/// Box-average downscale of an 8-bit image to `out_w × out_h` (each no larger than the input):
/// every source pixel is added to the output pixel its index maps to (`x · out_w / w`). Memory
/// is one row of sums.
pub fn downscale<P>(
    img: &ImageBuffer<P, Vec<u8>>,
    out_w: u32,
    out_h: u32,
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8>,
{
    let cn = usize::from(P::CHANNEL_COUNT);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (ow, oh) = (
        (out_w as usize).clamp(1, w.max(1)),
        (out_h as usize).clamp(1, h.max(1)),
    );
    let col_of: Vec<usize> = (0..w).map(|x| x * ow / w).collect();
    let mut col_count = vec![0u64; ow];
    for &c in &col_of {
        col_count[c] += 1;
    }
    let mut out = vec![0u8; ow * oh * cn];
    let mut sums = vec![0u64; ow * cn];
    let mut rows_in = 0u64;
    let mut current = 0usize;
    let raw = img.as_raw();
    let flush = |sums: &mut [u64], rows: u64, oy: usize, out: &mut [u8]| {
        for (ox, count) in col_count.iter().enumerate() {
            let n = (count * rows).max(1);
            for c in 0..cn {
                let i = ox * cn + c;
                out[(oy * ow) * cn + i] = ((sums[i] + n / 2) / n).min(255) as u8;
            }
        }
        sums.iter_mut().for_each(|s| *s = 0);
    };
    for (y, row) in raw.chunks_exact(w * cn).enumerate().take(h) {
        let oy = y * oh / h;
        if oy != current {
            flush(&mut sums, rows_in, current, &mut out);
            rows_in = 0;
            current = oy;
        }
        for (x, px) in row.chunks_exact(cn).enumerate() {
            let base = col_of[x] * cn;
            for (c, v) in px.iter().enumerate() {
                sums[base + c] += u64::from(*v);
            }
        }
        rows_in += 1;
    }
    if rows_in > 0 {
        flush(&mut sums, rows_in, current, &mut out);
    }
    ImageBuffer::from_raw(ow as u32, oh as u32, out).unwrap_or_else(|| ImageBuffer::new(1, 1))
}

/// Bilinear sampling positions along one axis: full-resolution index → two working indices
/// and the weight of the second (pixel centres aligned).
struct Axis {
    i0: Vec<u32>,
    i1: Vec<u32>,
    t: Vec<f32>,
}

impl Axis {
    fn new(full: u32, work: u32) -> Self {
        let scale = f64::from(work) / f64::from(full.max(1));
        let last = work.saturating_sub(1);
        let mut axis = Axis {
            i0: Vec::with_capacity(full as usize),
            i1: Vec::with_capacity(full as usize),
            t: Vec::with_capacity(full as usize),
        };
        for x in 0..full {
            let s = ((f64::from(x) + 0.5) * scale - 0.5).clamp(0.0, f64::from(last));
            let i0 = s.floor() as u32;
            axis.i0.push(i0);
            axis.i1.push((i0 + 1).min(last));
            axis.t.push((s - f64::from(i0)) as f32);
        }
        axis
    }
}

/// The bilinear value of `work` at full-resolution pixel `(x, y)`, channel `c`.
fn sample<P: Pixel<Subpixel = u8>>(
    work: &ImageBuffer<P, Vec<u8>>,
    ax: &Axis,
    ay: &Axis,
    x: usize,
    y: usize,
    c: usize,
) -> f32 {
    let (x0, x1, tx) = (ax.i0[x], ax.i1[x], ax.t[x]);
    let (y0, y1, ty) = (ay.i0[y], ay.i1[y], ay.t[y]);
    let v = |xx: u32, yy: u32| f32::from(work.get_pixel(xx, yy).channels()[c]);
    let top = v(x0, y0) * (1.0 - tx) + v(x1, y0) * tx;
    let bottom = v(x0, y1) * (1.0 - tx) + v(x1, y1) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// Decouples a full-resolution image `full` given its working-size copy `work` and the
/// working-size `mask` (see the module documentation). `full` becomes the CIP.
///
/// # Errors
/// [`Error::SizeMismatch`] if `mask` and `work` differ in size; as [`pad_rgb`].
pub fn decouple_at_working_size(
    mut full: RgbImage,
    work: &RgbImage,
    mask: &GrayImage,
    opts: &DecoupleOptions,
) -> Result<Outcome> {
    opts.validate()?;
    let (ww, wh) = work.dimensions();
    if mask.dimensions() != (ww, wh) {
        return Err(Error::SizeMismatch {
            what: "mask",
            image_width: ww,
            image_height: wh,
            other_width: mask.width(),
            other_height: mask.height(),
        });
    }
    let (w, h) = full.dimensions();
    if w == 0 || h == 0 || ww == 0 || wh == 0 {
        return Err(Error::EmptyImage {
            what: "image to decouple",
        });
    }
    let is_object = |v: u8| v > opts.mask_threshold;
    let work_area = mask.as_raw().iter().filter(|&&v| is_object(v)).count() as u64;
    let work_coverage = (work_area as f64 / (u64::from(ww) * u64::from(wh)) as f64) as f32;
    if work_coverage > opts.max_area_fraction {
        return Ok(Outcome::TooLarge {
            coverage: work_coverage,
        });
    }
    let work_box = BBox::enclosing(ww, wh, |x, y| is_object(mask.get_pixel(x, y).0[0]));
    let Some(work_box) = work_box.filter(|_| work_coverage >= opts.min_area_fraction) else {
        return Ok(Outcome::NothingFound {
            coverage: work_coverage,
        });
    };
    let (ax, ay) = (Axis::new(w, ww), Axis::new(h, wh));

    // CDP: full-resolution pixels, upsampled alpha, box and area of the upsampled alpha
    let region = full_region(work_box, (w, h), (ww, wh));
    let alpha = GrayImage::from_fn(region.w, region.h, |x, y| {
        let v = sample(
            mask,
            &ax,
            &ay,
            (region.x + x) as usize,
            (region.y + y) as usize,
            0,
        );
        Luma([v.round().clamp(0.0, 255.0) as u8])
    });
    let mask_area = alpha.as_raw().iter().filter(|&&v| is_object(v)).count() as u64;
    let Some(inner) = BBox::enclosing(region.w, region.h, |x, y| {
        is_object(alpha.get_pixel(x, y).0[0])
    }) else {
        return Ok(Outcome::NothingFound {
            coverage: work_coverage,
        });
    };
    let bbox = BBox {
        x: region.x + inner.x,
        y: region.y + inner.y,
        w: inner.w,
        h: inner.h,
    };
    let cdp = RgbaImage::from_fn(bbox.w, bbox.h, |x, y| {
        let [r, g, b] = full.get_pixel(bbox.x + x, bbox.y + y).0;
        let a = alpha.get_pixel(inner.x + x, inner.y + y).0[0];
        image::Rgba([r, g, b, a])
    });
    drop(alpha);

    // CIP: fill at the working size, composite the upsampled fill into the hole in place
    let hole = dilate(mask, opts.hole_dilation_radius(ww, wh));
    let mut keep = hole.clone();
    keep.pixels_mut().for_each(|p| *p = Luma([255 - p.0[0]]));
    let fill = pad_rgb(work, &keep)?;
    drop(keep);
    let row_has_hole: Vec<bool> = hole
        .as_raw()
        .chunks_exact(ww as usize)
        .map(|r| r.iter().any(|&v| v > 0))
        .collect();
    for y in 0..h as usize {
        let (y0, y1) = (ay.i0[y] as usize, ay.i1[y] as usize);
        if !row_has_hole[y0] && !row_has_hole[y1] {
            continue;
        }
        for x in 0..w as usize {
            let hv = sample(&hole, &ax, &ay, x, y, 0) / 255.0;
            if hv <= 0.0 {
                continue;
            }
            let px = full.get_pixel_mut(x as u32, y as u32);
            for c in 0..3 {
                let f = sample(&fill, &ax, &ay, x, y, c);
                let v = f32::from(px.0[c]) * (1.0 - hv) + f * hv;
                px.0[c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    let coverage = (mask_area as f64 / (u64::from(w) * u64::from(h)) as f64) as f32;
    Ok(Outcome::Decoupled(Box::new(Decoupled {
        cdp,
        bbox,
        cip: full,
        mask_area,
        coverage,
    })))
}

/// The full-resolution region that a working-size box can reach after bilinear upsampling:
/// the box scaled up and grown by one working pixel on each side, clamped to the image.
fn full_region(b: BBox, (w, h): (u32, u32), (ww, wh): (u32, u32)) -> BBox {
    let sx = f64::from(w) / f64::from(ww);
    let sy = f64::from(h) / f64::from(wh);
    let x0 = ((f64::from(b.x.saturating_sub(1))) * sx).floor() as u32;
    let y0 = ((f64::from(b.y.saturating_sub(1))) * sy).floor() as u32;
    let x1 = ((f64::from((b.x + b.w + 1).min(ww))) * sx).ceil() as u32;
    let y1 = ((f64::from((b.y + b.h + 1).min(wh))) * sy).ceil() as u32;
    let (x1, y1) = (x1.min(w), y1.min(h));
    BBox {
        x: x0.min(x1),
        y: y0.min(y1),
        w: x1 - x0.min(x1),
        h: y1 - y0.min(y1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decouple_image;

    #[test]
    fn working_size_caps_the_long_side() {
        assert_eq!(working_size(12_000, 9_000, 4096), (4096, 3072));
        assert_eq!(working_size(9_000, 12_000, 4096), (3072, 4096));
        assert_eq!(working_size(4096, 100, 4096), (4096, 100));
        assert_eq!(working_size(100_000, 10, 1000), (1000, 1));
    }

    #[test]
    fn downscale_averages_boxes() {
        let img = GrayImage::from_fn(4, 2, |x, _| Luma([[0, 100, 200, 250][x as usize]]));
        let small = downscale(&img, 2, 1);
        assert_eq!(small.as_raw(), &vec![50, 225]);
        let rgb = RgbImage::from_pixel(7, 5, image::Rgb([9, 80, 200]));
        assert!(downscale(&rgb, 3, 2).pixels().all(|p| p.0 == [9, 80, 200]));
    }

    fn scene(w: u32, h: u32) -> (RgbImage, GrayImage) {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 7 * 30) as u8])
        });
        let mask = GrayImage::from_fn(w, h, |x, y| {
            let inside = (w / 4..w / 2).contains(&x) && (h / 3..2 * h / 3).contains(&y);
            Luma([if inside { 255 } else { 0 }])
        });
        (img, mask)
    }

    #[test]
    fn large_image_matches_full_resolution_decoupling_where_it_matters() {
        let (w, h) = (800, 600);
        let (img, mask) = scene(w, h);
        let opts = DecoupleOptions::default();
        let Outcome::Decoupled(reference) = decouple_image(&img, &mask, &opts).unwrap() else {
            panic!("reference not decoupled")
        };
        let (ww, wh) = working_size(w, h, 200);
        let work = downscale(&img, ww, wh);
        let work_mask = downscale(&mask, ww, wh);
        let Outcome::Decoupled(d) =
            decouple_at_working_size(img.clone(), &work, &work_mask, &opts).unwrap()
        else {
            panic!("not decoupled")
        };
        // the box is the object's box within a working pixel (4 px here)
        let close = |a: u32, b: u32| a.abs_diff(b) <= 4;
        assert!(
            close(d.bbox.x, reference.bbox.x)
                && close(d.bbox.y, reference.bbox.y)
                && close(d.bbox.w, reference.bbox.w)
                && close(d.bbox.h, reference.bbox.h),
            "{:?} vs {:?}",
            d.bbox,
            reference.bbox
        );
        let rel =
            (d.mask_area as f64 - reference.mask_area as f64).abs() / reference.mask_area as f64;
        assert!(
            rel < 0.02,
            "area {} vs {}",
            d.mask_area,
            reference.mask_area
        );
        // CDP colours are the full-resolution pixels
        let (cx, cy) = (d.bbox.w / 2, d.bbox.h / 2);
        assert_eq!(
            d.cdp.get_pixel(cx, cy).0[..3],
            img.get_pixel(d.bbox.x + cx, d.bbox.y + cy).0
        );
        assert_eq!(d.cdp.get_pixel(cx, cy).0[3], 255);
        // the CIP keeps every pixel away from the hole exactly
        assert_eq!(d.cip.dimensions(), (w, h));
        let r = opts.hole_dilation_radius(w, h) + 8;
        for (x, y, p) in d.cip.enumerate_pixels() {
            let near =
                (w / 4 - r..w / 2 + r).contains(&x) && (h / 3 - r..2 * h / 3 + r).contains(&y);
            if !near {
                assert_eq!(p, img.get_pixel(x, y), "changed at ({x}, {y})");
            }
        }
        // inside the hole, the fill is close to the full-resolution fill
        let mut err = 0.0f64;
        let mut n = 0.0f64;
        for y in (h / 3 + 10..2 * h / 3 - 10).step_by(7) {
            for x in (w / 4 + 10..w / 2 - 10).step_by(7) {
                for c in 0..3 {
                    let a = f64::from(d.cip.get_pixel(x, y).0[c]);
                    let b = f64::from(reference.cip.get_pixel(x, y).0[c]);
                    err += (a - b).abs();
                    n += 1.0;
                }
            }
        }
        assert!(err / n < 12.0, "mean abs fill difference {}", err / n);
    }

    #[test]
    fn empty_and_full_working_masks_are_classified() {
        let (img, _) = scene(300, 200);
        let work = downscale(&img, 150, 100);
        let opts = DecoupleOptions::default();
        let empty = GrayImage::new(150, 100);
        assert!(matches!(
            decouple_at_working_size(img.clone(), &work, &empty, &opts).unwrap(),
            Outcome::NothingFound { .. }
        ));
        let full = GrayImage::from_pixel(150, 100, Luma([255]));
        assert!(matches!(
            decouple_at_working_size(img.clone(), &work, &full, &opts).unwrap(),
            Outcome::TooLarge { .. }
        ));
        let err = decouple_at_working_size(img, &work, &GrayImage::new(10, 10), &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("150x100") && err.contains("10x10"), "{err}");
    }
}
