//! DiffuseMix's image rule (`khawar-islam/diffuseMix`, `augment/utils.py` and
//! `augment/diffuseMix.py`): for each real image (resized to 256×256) and each style prompt,
//! InstructPix2Pix generates an image; unless it is blank it is
//! 1. joined to the original ([`hybrid`], `Utils.combine_images`): a random choice of
//!    `horizontal` (original on the left, generated on the right) or `vertical` (original on
//!    top, generated below), with a linear ramp `linspace(0, 1, 20)` of `blend_width` 20 pixels
//!    centred on the middle: mask 0 for the first `n/2 − 10` columns (rows), the ramp, then 1;
//!    `out = (1 − m)·orig/255 + m·gen/255`, times 255, clipped, truncated to u8;
//! 2. blended with a randomly chosen fractal image ([`blend_fractal`],
//!    `Utils.blend_images_with_resize`, α = 0.2): `(1 − α)·hybrid + α·fractal` in f32, clipped,
//!    truncated to u8.
//!
//! The label is the real image's. Fractals come from [`super::fractal`] (the reference
//! downloads a fixed set). Blank generations are skipped ([`is_blank`]). Images must have the
//! same size (the reference resizes both to 256×256 first); for an odd side the ramp is centred
//! the same way and the rest is 1 (the reference's mask only fits even sides).
use image::RgbImage;
use rand::Rng;

/// `blend_width` of `Utils.combine_images`.
pub const BLEND_WIDTH: u32 = 20;
/// α of `Utils.blend_images_with_resize`.
pub const FRACTAL_ALPHA: f64 = 0.2;
/// The side DiffuseMix resizes every image to.
pub const SIDE: u32 = 256;
/// The style prompts of the reference's README (`--prompts`).
pub const PROMPTS: [&str; 9] = [
    "Autumn",
    "snowy",
    "watercolor art",
    "sunset",
    "rainbow",
    "aurora",
    "mosaic",
    "ukiyo-e",
    "a sketch with crayon",
];

/// How the two halves are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Original left, generated right (ramp across columns).
    Horizontal,
    /// Original top, generated bottom (ramp across rows).
    Vertical,
}

/// The random choices of one DiffuseMix image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffuseMixParams {
    /// The join.
    pub direction: Direction,
    /// Which fractal image.
    pub fractal: usize,
}

/// Draws a join direction (fair coin) and a fractal among `fractals` (uniform).
///
/// # Errors
/// A message if there are no fractals.
pub fn sample(rng: &mut impl Rng, fractals: usize) -> Result<DiffuseMixParams, String> {
    if fractals == 0 {
        return Err("DiffuseMix needs at least one fractal image".into());
    }
    let direction = if rng.random_bool(0.5) {
        Direction::Horizontal
    } else {
        Direction::Vertical
    };
    Ok(DiffuseMixParams {
        direction,
        fractal: rng.random_range(0..fractals),
    })
}

/// The mask value at position `i` of a side of length `n`: 0 before the ramp, the ramp
/// `linspace(0, 1, width)`, then 1.
fn mask_at(i: u32, n: u32, width: u32) -> f64 {
    let start = (n / 2).saturating_sub(width / 2);
    if i < start {
        0.0
    } else if i - start < width {
        let k = i - start;
        if width <= 1 || k + 1 == width {
            1.0
        } else {
            f64::from(k) * (1.0 / f64::from(width - 1))
        }
    } else {
        1.0
    }
}

/// `Utils.combine_images(original, generated, blend_width)`.
///
/// # Errors
/// A message if the sizes differ.
pub fn hybrid(
    original: &RgbImage,
    generated: &RgbImage,
    direction: Direction,
    blend_width: u32,
) -> Result<RgbImage, String> {
    check_same_size("hybrid", original, generated)?;
    let (w, h) = original.dimensions();
    Ok(RgbImage::from_fn(w, h, |x, y| {
        let m = match direction {
            Direction::Horizontal => mask_at(x, w, blend_width),
            Direction::Vertical => mask_at(y, h, blend_width),
        };
        let (o, g) = (original.get_pixel(x, y).0, generated.get_pixel(x, y).0);
        image::Rgb(std::array::from_fn(|c| {
            let a = f64::from(f32::from(o[c]) / 255.0);
            let b = f64::from(f32::from(g[c]) / 255.0);
            to_u8(((1.0 - m) * a + m * b) * 255.0)
        }))
    }))
}

/// `Utils.blend_images_with_resize(base, fractal, alpha)` for a fractal of the base's size.
///
/// # Errors
/// A message if the sizes differ or `alpha` is outside [0, 1].
pub fn blend_fractal(base: &RgbImage, fractal: &RgbImage, alpha: f64) -> Result<RgbImage, String> {
    check_same_size("fractal blend", base, fractal)?;
    if !(0.0..=1.0).contains(&alpha) {
        return Err(format!("fractal alpha {alpha} is outside [0, 1]"));
    }
    let (keep, add) = ((1.0 - alpha) as f32, alpha as f32);
    let (w, h) = base.dimensions();
    Ok(RgbImage::from_fn(w, h, |x, y| {
        let (b, f) = (base.get_pixel(x, y).0, fractal.get_pixel(x, y).0);
        image::Rgb(std::array::from_fn(|c| {
            to_u8(f64::from(keep * f32::from(b[c]) + add * f32::from(f[c])))
        }))
    }))
}

/// One DiffuseMix image: [`hybrid`] with [`BLEND_WIDTH`], then [`blend_fractal`] with
/// [`FRACTAL_ALPHA`].
///
/// # Errors
/// As [`hybrid`] and [`blend_fractal`].
pub fn diffusemix_image(
    original: &RgbImage,
    generated: &RgbImage,
    fractal: &RgbImage,
    direction: Direction,
) -> Result<RgbImage, String> {
    let joined = hybrid(original, generated, direction, BLEND_WIDTH)?;
    blend_fractal(&joined, fractal, FRACTAL_ALPHA)
}

/// Whether a generation is blank and must be skipped: more than 90% of its pixels have one
/// extreme grey level (0 or 255, Pillow's `L` conversion) and no other level holds 10%.
///
/// The reference's `Utils.is_black_image` tests only level 255 (`histogram[-1]`, i.e. white);
/// the safety checker's replacement images are black, so both ends are tested here.
pub fn is_blank(img: &RgbImage) -> bool {
    let mut hist = [0u64; 256];
    for p in img.pixels() {
        let [r, g, b] = p.0;
        let l = (u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16;
        hist[l.min(255) as usize] += 1;
    }
    let n = (u64::from(img.width()) * u64::from(img.height())) as f64;
    [0usize, 255].iter().any(|&level| {
        let others = hist
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != level)
            .map(|(_, &c)| c)
            .max()
            .unwrap_or(0);
        hist[level] as f64 > 0.9 * n && (others as f64) < 0.1 * n
    })
}

/// `np.clip(v, 0, 255).astype(np.uint8)`: clipped, then truncated towards zero.
fn to_u8(v: f64) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

fn check_same_size(what: &str, a: &RgbImage, b: &RgbImage) -> Result<(), String> {
    if a.dimensions() == b.dimensions() {
        Ok(())
    } else {
        Err(format!(
            "{what}: images are {:?} and {:?}; resize both to the same size first",
            a.dimensions(),
            b.dimensions()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};
    use image::Rgb;

    fn flat(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v, v]))
    }

    #[test]
    fn the_ramp_sits_in_the_middle_and_the_generated_half_is_right_or_bottom() {
        let (orig, gen) = (flat(8, 2, 200), flat(8, 2, 100));
        let h = hybrid(&orig, &gen, Direction::Horizontal, 4).unwrap();
        let row: Vec<u8> = (0..8).map(|x| h.get_pixel(x, 0).0[0]).collect();
        // mask: 0 0 | 0 1/3 2/3 1 | 1 1; (1-m)·200 + m·100, truncated.
        assert_eq!(row, vec![200, 200, 200, 166, 133, 100, 100, 100]);
        let v = hybrid(&orig, &gen, Direction::Vertical, 4).unwrap();
        assert_eq!(v.get_pixel(0, 0).0[0], 200);
        assert_eq!(
            v.get_pixel(7, 1).0[0],
            166,
            "2 rows: the ramp starts at row 0"
        );
        let tall = hybrid(
            &flat(2, 256, 200),
            &flat(2, 256, 100),
            Direction::Vertical,
            20,
        )
        .unwrap();
        assert_eq!(tall.get_pixel(0, 117).0[0], 200);
        assert_eq!(tall.get_pixel(0, 137).0[0], 100);
        assert_eq!(tall.get_pixel(0, 255).0[0], 100);
        assert!(hybrid(&orig, &flat(4, 2, 0), Direction::Vertical, 4).is_err());
    }

    #[test]
    fn fractal_blend_is_the_f32_mix_truncated() {
        let out = blend_fractal(&flat(2, 2, 201), &flat(2, 2, 10), 0.2).unwrap();
        // 0.8·201 + 0.2·10 = 162.8 -> 162.
        assert_eq!(out.get_pixel(1, 1).0, [162, 162, 162]);
        assert!(blend_fractal(&flat(2, 2, 1), &flat(2, 2, 1), 1.5).is_err());
        let img = diffusemix_image(
            &flat(40, 4, 200),
            &flat(40, 4, 100),
            &flat(40, 4, 0),
            Direction::Horizontal,
        )
        .unwrap();
        assert_eq!(img.get_pixel(0, 0).0[0], 160);
        assert_eq!(img.get_pixel(39, 3).0[0], 80);
    }

    #[test]
    fn blank_generations_are_recognised() {
        assert!(is_blank(&flat(10, 10, 0)));
        assert!(is_blank(&flat(10, 10, 255)));
        assert!(!is_blank(&flat(10, 10, 128)));
        let mut half = flat(10, 10, 0);
        for x in 0..10 {
            for y in 0..5 {
                half.put_pixel(x, y, Rgb([200, 30, 90]));
            }
        }
        assert!(!is_blank(&half));
    }

    #[test]
    fn choices_are_seeded_and_both_directions_occur() {
        let a = sample(&mut rng_for(4, Stream::Combine, &[0, 3]), 5).unwrap();
        let b = sample(&mut rng_for(4, Stream::Combine, &[0, 3]), 5).unwrap();
        assert_eq!(a, b);
        let horizontal = (0..1000)
            .filter(|&s| {
                let p = sample(&mut rng_for(4, Stream::Combine, &[0, s]), 5).unwrap();
                assert!(p.fractal < 5);
                p.direction == Direction::Horizontal
            })
            .count();
        assert!((430..=570).contains(&horizontal), "{horizontal}");
        assert!(sample(&mut rng_for(4, Stream::Combine, &[0, 0]), 0).is_err());
    }
}
