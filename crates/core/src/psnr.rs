//! Peak signal-to-noise ratio between 8-bit images, the diversity measure of the paper's
//! Fig. 5b (a lower PSNR between an image and its augmentations means more diverse
//! augmentations), and the flattening of RGBA cut-outs it compares them with.
use image::{Rgb, RgbImage, RgbaImage};

/// `10·log10(255² / MSE)` over every channel value of two equally long 8-bit buffers, in dB.
/// Identical buffers give `f64::INFINITY`; `None` if the lengths differ or are zero.
pub fn psnr(a: &[u8], b: &[u8]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let sse: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = u64::from(x.abs_diff(y));
            d * d
        })
        .sum();
    if sse == 0 {
        return Some(f64::INFINITY);
    }
    let mse = sse as f64 / a.len() as f64;
    Some(10.0 * (255.0f64 * 255.0 / mse).log10())
}

/// PSNR of two RGB images of the same size (`None` for different sizes or no pixels).
pub fn psnr_rgb(a: &RgbImage, b: &RgbImage) -> Option<f64> {
    if a.dimensions() != b.dimensions() {
        return None;
    }
    psnr(a.as_raw(), b.as_raw())
}

/// The mid-gray (127) backdrop transparent cut-outs are flattened onto, as LayerDiffuse does
/// before its VAE.
pub const FLATTEN_GRAY: u8 = 127;

/// `img` composited over [`FLATTEN_GRAY`] (rounded 8-bit "over").
pub fn over_gray(img: &RgbaImage) -> RgbImage {
    over(img, |_, _| Rgb([FLATTEN_GRAY; 3]))
}

/// `img` composited "over" the backdrop colour `backdrop(x, y)`, rounded to 8 bits:
/// `(c·a + b·(255 − a) + 127) / 255` per channel.
pub fn over(img: &RgbaImage, backdrop: impl Fn(u32, u32) -> Rgb<u8>) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let [r, g, b, a] = img.get_pixel(x, y).0;
        let bg = backdrop(x, y).0;
        let a = u32::from(a);
        let mix = |c: u8, d: u8| ((u32::from(c) * a + u32::from(d) * (255 - a) + 127) / 255) as u8;
        Rgb([mix(r, bg[0]), mix(g, bg[1]), mix(b, bg[2])])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_follows_its_definition() {
        assert_eq!(psnr(&[1, 2, 3], &[1, 2, 3]), Some(f64::INFINITY));
        // One channel value off by 255 out of four: MSE = 255²/4 → 10·log10(4) dB.
        let p = psnr(&[0, 0, 0, 0], &[255, 0, 0, 0]).unwrap();
        assert!((p - 10.0 * 4f64.log10()).abs() < 1e-12, "{p}");
        let p = psnr(&[10; 6], &[12; 6]).unwrap();
        assert!((p - 10.0 * (65025.0f64 / 4.0).log10()).abs() < 1e-12);
        assert_eq!(psnr(&[1], &[1, 2]), None);
        assert_eq!(psnr(&[], &[]), None);
        let a = RgbImage::new(2, 3);
        assert_eq!(psnr_rgb(&a, &RgbImage::new(3, 2)), None);
    }

    #[test]
    fn flattening_keeps_opaque_and_grays_transparent_pixels() {
        let img = RgbaImage::from_fn(3, 1, |x, _| {
            image::Rgba([200, 10, 0, [255, 0, 128][x as usize]])
        });
        let flat = over_gray(&img);
        assert_eq!(flat.get_pixel(0, 0).0, [200, 10, 0]);
        assert_eq!(flat.get_pixel(1, 0).0, [127, 127, 127]);
        // 128/255 of the colour: (200·128 + 127·127 + 127)/255 = 41856/255 → 164.
        assert_eq!(flat.get_pixel(2, 0).0[0], 164);
    }
}
