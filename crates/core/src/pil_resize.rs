//! Resampling that reproduces Pillow's `Image.resize(size, filter)` bit for bit, for the
//! bilinear and the bicubic filter ([`PilFilter`]).
//!
//! Pillow's filters are kernels whose support is scaled by the reduction factor when
//! downscaling (i.e. they antialias), applied as two separable passes (horizontal first, then
//! vertical, as every Pillow up to 12 does; Pillow 13 runs the vertical pass first when the height
//! shrinks by more than twice what the width does, python-pillow/Pillow#9549, which can round a
//! level differently; the references ran on Pillow <= 12) with 22-bit fixed-point weights and
//! rounding to `u8` after each pass (parity: `tests/pil_resize_parity.rs`). Bilinear is a
//! triangle of half-width 1; bicubic is Keys' cubic with `a = −0.5` and half-width 2 (negative
//! lobes: results are clamped to 0..=255 after each pass). The models' reference outputs were
//! produced with Pillow, so matching it exactly keeps the inputs identical. Pixels are
//! interleaved `u8` with any channel count. Used by the ONNX models (ISNet, NanoDet), the tch
//! ones (SAM, GroundingDINO: bilinear) and the peers (CLIP's image processor, DiffuseMix:
//! bicubic, Pillow's default for `Image.resize`), so it lives here rather than in a model crate.

/// A Pillow resampling filter (`PIL.Image.Resampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PilFilter {
    /// `Image.BILINEAR`: a triangle, support 1.
    #[default]
    Bilinear,
    /// `Image.BICUBIC` (`Image.resize`'s default since Pillow 7, CLIP's image processor,
    /// torchvision's `InterpolationMode.BICUBIC` on PIL images): Keys' cubic, `a = −0.5`,
    /// support 2.
    Bicubic,
}

impl PilFilter {
    /// The kernel's half-width at scale 1 (Pillow's `filter->support`).
    fn support(self) -> f64 {
        match self {
            PilFilter::Bilinear => 1.0,
            PilFilter::Bicubic => 2.0,
        }
    }

    /// The kernel at `x` (Pillow's `bilinear_filter` / `bicubic_filter`).
    fn kernel(self, x: f64) -> f64 {
        match self {
            PilFilter::Bilinear => triangle(x),
            PilFilter::Bicubic => cubic(x),
        }
    }
}

/// Fixed-point precision of Pillow's 8-bit resampler: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 22;

/// The weights of one resampling pass: for each output index, the first input index and the
/// fixed-point weights of the consecutive inputs it reads.
#[derive(Debug, Clone)]
struct Coeffs {
    /// `(first input index, number of inputs)` per output index.
    bounds: Vec<(usize, usize)>,
    /// `ksize` weights per output index (unused tail is zero).
    weights: Vec<i32>,
    /// Weights stored per output index.
    ksize: usize,
}

/// Pillow's bilinear kernel: a triangle of half-width 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Pillow's bicubic kernel: Keys' cubic convolution with `a = −0.5`, half-width 2.
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the full input range.
fn precompute(in_size: usize, out_size: usize, filter: PilFilter) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's `(int)` truncates toward zero; negative starts clamp to 0 either way.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter.kernel((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        let row = &mut weights[xx * ksize..xx * ksize + n];
        for (dst, &w) in row.iter_mut().zip(&k[..n]) {
            let w = if ww != 0.0 { w / ww } else { w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            *dst = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs {
        bounds,
        weights,
        ksize,
    }
}

/// Pillow's `clip8`: shift out the fixed-point fraction and saturate to `u8`.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Half of one fixed-point unit, the rounding offset every accumulator starts from.
///
/// Accumulators are `i32`, as in Pillow: the weights of one output sum to 2²², and their
/// positive part to at most about 1.3·2²² (the bicubic kernel's negative lobes), so an
/// accumulator stays within ±(1.3·255·2²² + 2²¹) < 2³¹.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Horizontal pass: `rows` rows of `in_w` pixels → rows of `out_w` pixels.
fn horizontal(src: &[u8], in_w: usize, rows: usize, ch: usize, c: &Coeffs) -> Vec<u8> {
    let out_w = c.bounds.len();
    let mut out = vec![0u8; out_w * rows * ch];
    for y in 0..rows {
        let src_row = &src[y * in_w * ch..(y + 1) * in_w * ch];
        let dst_row = &mut out[y * out_w * ch..(y + 1) * out_w * ch];
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.weights[xx * c.ksize..xx * c.ksize + n];
            let taps = &src_row[xmin * ch..(xmin + n) * ch];
            let dst = &mut dst_row[xx * ch..(xx + 1) * ch];
            if ch == 3 {
                // All three channels per tap: one pass over the input pixels.
                let mut acc = [HALF; 3];
                for (px, &w) in taps.chunks_exact(3).zip(k) {
                    acc[0] += i32::from(px[0]) * w;
                    acc[1] += i32::from(px[1]) * w;
                    acc[2] += i32::from(px[2]) * w;
                }
                for (d, a) in dst.iter_mut().zip(acc) {
                    *d = clip8(a);
                }
            } else {
                for (b, d) in dst.iter_mut().enumerate() {
                    let mut acc = HALF;
                    for (i, &w) in k.iter().enumerate() {
                        acc += i32::from(taps[i * ch + b]) * w;
                    }
                    *d = clip8(acc);
                }
            }
        }
    }
    out
}

/// Vertical pass: `in_h` rows of `width · ch` bytes → `out_h` rows.
fn vertical(src: &[u8], width: usize, ch: usize, c: &Coeffs) -> Vec<u8> {
    let stride = width * ch;
    let out_h = c.bounds.len();
    let mut out = vec![0u8; stride * out_h];
    let mut acc = vec![0i32; stride];
    for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
        acc.iter_mut().for_each(|a| *a = HALF);
        let k = &c.weights[yy * c.ksize..yy * c.ksize + n];
        for (i, &w) in k.iter().enumerate() {
            let row = &src[(ymin + i) * stride..(ymin + i + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * w;
            }
        }
        for (d, &a) in out[yy * stride..(yy + 1) * stride].iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}

/// Resizes interleaved `u8` pixels (`in_w × in_h × ch`) to `out_w × out_h` exactly as Pillow's
/// `Image.resize(..., BILINEAR)` does. Sizes must be non-zero and `src.len() == in_w·in_h·ch`
/// (callers guarantee this; a mismatch yields an empty vector).
pub fn resize_bilinear_pil(
    src: &[u8],
    in_size: (u32, u32),
    out_size: (u32, u32),
    ch: usize,
) -> Vec<u8> {
    resize_pil(src, in_size, out_size, ch, PilFilter::Bilinear)
}

/// Resizes interleaved `u8` pixels (`in_w × in_h × ch`) to `out_w × out_h` exactly as Pillow's
/// `Image.resize(..., filter)` does (an equal size is a copy, as in Pillow). Sizes must be
/// non-zero and `src.len() == in_w·in_h·ch` (a mismatch yields an empty vector).
pub fn resize_pil(
    src: &[u8],
    (in_w, in_h): (u32, u32),
    (out_w, out_h): (u32, u32),
    ch: usize,
    filter: PilFilter,
) -> Vec<u8> {
    let (in_w, in_h, out_w, out_h) = (in_w as usize, in_h as usize, out_w as usize, out_h as usize);
    if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 || src.len() != in_w * in_h * ch {
        return Vec::new();
    }
    let horiz = (in_w != out_w).then(|| precompute(in_w, out_w, filter));
    let mut vert = (in_h != out_h).then(|| precompute(in_h, out_h, filter));
    // Only the input rows the vertical pass reads go through the horizontal pass.
    let (first, last) = match &vert {
        Some(v) => {
            let first = v.bounds.first().map_or(0, |b| b.0);
            let last = v.bounds.last().map_or(in_h, |b| b.0 + b.1);
            (first, last)
        }
        None => (0, in_h),
    };
    let stage1 = match &horiz {
        Some(h) => {
            if let Some(v) = vert.as_mut() {
                v.bounds.iter_mut().for_each(|b| b.0 -= first);
            }
            let rows = &src[first * in_w * ch..last * in_w * ch];
            horizontal(rows, in_w, last - first, ch, h)
        }
        None => src.to_vec(),
    };
    match &vert {
        Some(v) => vertical(&stage1, out_w, ch, v),
        None => stage1,
    }
}

/// Resizes an RGB image like Pillow's bilinear `resize`.
pub fn resize_rgb_pil(img: &image::RgbImage, w: u32, h: u32) -> image::RgbImage {
    resize_rgb_pil_with(img, w, h, PilFilter::Bilinear)
}

/// Resizes an RGB image like Pillow's `resize((w, h), filter)`.
pub fn resize_rgb_pil_with(
    img: &image::RgbImage,
    w: u32,
    h: u32,
    filter: PilFilter,
) -> image::RgbImage {
    let out = resize_pil(img.as_raw(), img.dimensions(), (w, h), 3, filter);
    image::RgbImage::from_raw(w, h, out).unwrap_or_else(|| image::RgbImage::new(w, h))
}

/// Resizes a grayscale image like Pillow's bilinear `resize`.
pub fn resize_gray_pil(img: &image::GrayImage, w: u32, h: u32) -> image::GrayImage {
    let out = resize_bilinear_pil(img.as_raw(), img.dimensions(), (w, h), 1);
    image::GrayImage::from_raw(w, h, out).unwrap_or_else(|| image::GrayImage::new(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_returns_the_input() {
        let src: Vec<u8> = (0..24).collect();
        assert_eq!(resize_bilinear_pil(&src, (4, 2), (4, 2), 3), src);
    }

    #[test]
    fn constant_image_stays_constant_up_and_down() {
        let src = vec![77u8; 13 * 7 * 3];
        for (w, h) in [(40, 3), (5, 21), (1, 1)] {
            let out = resize_bilinear_pil(&src, (13, 7), (w, h), 3);
            assert_eq!(out.len(), (w * h * 3) as usize);
            assert!(out.iter().all(|&p| p == 77), "{w}x{h}");
        }
    }

    #[test]
    fn two_pixel_upscale_matches_pillow() {
        // Pillow: Image.fromarray(np.array([[0, 255]], np.uint8)).resize((4, 1), BILINEAR)
        // -> [0, 64, 191, 255]
        let out = resize_bilinear_pil(&[0, 255], (2, 1), (4, 1), 1);
        assert_eq!(out, vec![0, 64, 191, 255]);
    }

    #[test]
    fn five_pixel_downscale_is_antialiased_like_pillow() {
        // Pillow: Image.fromarray(np.array([[0, 255, 10, 200, 3]], np.uint8)).resize((2, 1))
        let out = resize_bilinear_pil(&[0, 255, 10, 200, 3], (5, 1), (2, 1), 1);
        assert_eq!(out, vec![116, 97]);
    }

    #[test]
    fn bicubic_keeps_constants_and_clamps_its_overshoot() {
        let src = vec![200u8; 9 * 5 * 3];
        for (w, h) in [(31, 4), (3, 17), (1, 1)] {
            let out = resize_pil(&src, (9, 5), (w, h), 3, PilFilter::Bicubic);
            assert!(out.iter().all(|&p| p == 200), "{w}x{h}");
        }
        // A hard edge upsampled: the cubic's negative lobes overshoot, clamped to 0 and 255.
        // Pillow: Image.fromarray(np.array([[0, 0, 255, 255]], np.uint8)).resize((16, 1), BICUBIC)
        let out = resize_pil(&[0, 0, 255, 255], (4, 1), (16, 1), 1, PilFilter::Bicubic);
        let want = [
            0, 0, 0, 0, 0, 0, 21, 88, 167, 234, 255, 255, 255, 255, 255, 255,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn five_pixel_bicubic_downscale_matches_pillow() {
        // Pillow: Image.fromarray(np.array([[0, 255, 10, 200, 3]], np.uint8)).resize((2, 1), BICUBIC)
        let out = resize_pil(&[0, 255, 10, 200, 3], (5, 1), (2, 1), 1, PilFilter::Bicubic);
        assert_eq!(out, vec![114, 94]);
    }

    #[test]
    fn bicubic_and_bilinear_differ_on_an_edge() {
        let src = [0u8, 0, 0, 255, 255, 255];
        let lin = resize_pil(&src, (6, 1), (15, 1), 1, PilFilter::Bilinear);
        let cub = resize_pil(&src, (6, 1), (15, 1), 1, PilFilter::Bicubic);
        assert_ne!(lin, cub);
    }

    #[test]
    fn mismatched_buffer_gives_empty_output() {
        assert!(resize_bilinear_pil(&[1, 2, 3], (2, 2), (4, 4), 1).is_empty());
    }
}
