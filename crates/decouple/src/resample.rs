//! Float resampling that reproduces OpenCV's `cv2.resize` bit-for-bit in structure (and to
//! float rounding in value) for the two modes the alpha pyramid needs:
//!
//! - [`resize_area`]: `INTER_AREA` for downscaling (`resizeArea_` in OpenCV's
//!   `imgproc/src/resize.cpp`): each destination pixel is the coverage-weighted mean of the
//!   source pixels its cell overlaps, with the weights of `computeResizeAreaTab` (slivers under
//!   1e-3 of a pixel are dropped, exactly as OpenCV does).
//! - [`resize_linear`]: `INTER_LINEAR` (`resizeGeneric_` with `HResizeLinear`/`VResizeLinear`):
//!   half-pixel centres, `fx = (dx + 0.5)·scale − 0.5` computed in `f32`, borders replicated.
//!
//! Images are row-major buffers of `[f32; CN]` pixels.

/// An interleaved float image: `height` rows of `width` pixels of `CN` values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planar<const CN: usize> {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) data: Vec<[f32; CN]>,
}

impl<const CN: usize> Planar<CN> {
    /// A zero image of the given shape.
    pub(crate) fn zeros(width: usize, height: usize) -> Self {
        Planar {
            width,
            height,
            data: vec![[0.0; CN]; width * height],
        }
    }

    fn row(&self, y: usize) -> &[[f32; CN]] {
        &self.data[y * self.width..(y + 1) * self.width]
    }
}

/// One term of a separable area kernel: `dst[di] += src[si] · alpha`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AreaTap {
    di: usize,
    si: usize,
    alpha: f32,
}

/// OpenCV's `cv::resize` scale: `1 / (dsize / ssize)` in double precision.
fn cv_scale(ssize: usize, dsize: usize) -> f64 {
    1.0 / (dsize as f64 / ssize as f64)
}

/// `computeResizeAreaTab` for one axis (indices in pixels, not values).
fn area_taps(ssize: usize, dsize: usize) -> Vec<AreaTap> {
    const SLIVER: f64 = 1e-3;
    let scale = cv_scale(ssize, dsize);
    let mut taps = Vec::with_capacity(ssize * 2);
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell_width = scale.min(ssize as f64 - fsx1);
        let sx2 = (fsx2.floor() as usize).min(ssize - 1);
        let sx1 = (fsx1.ceil() as usize).min(sx2);
        if sx1 as f64 - fsx1 > SLIVER {
            let alpha = ((sx1 as f64 - fsx1) / cell_width) as f32;
            taps.push(AreaTap {
                di: dx,
                si: sx1 - 1,
                alpha,
            });
        }
        for sx in sx1..sx2 {
            let alpha = (1.0 / cell_width) as f32;
            taps.push(AreaTap {
                di: dx,
                si: sx,
                alpha,
            });
        }
        if fsx2 - sx2 as f64 > SLIVER {
            let alpha = ((fsx2 - sx2 as f64).min(1.0).min(cell_width) / cell_width) as f32;
            taps.push(AreaTap {
                di: dx,
                si: sx2,
                alpha,
            });
        }
    }
    taps
}

/// `cv2.resize(src, (width, height), interpolation=cv2.INTER_AREA)` for a downscale
/// (`width <= src.width`, `height <= src.height`, both at least 1).
pub(crate) fn resize_area<const CN: usize>(
    src: &Planar<CN>,
    width: usize,
    height: usize,
) -> Planar<CN> {
    debug_assert!(width >= 1 && height >= 1 && width <= src.width && height <= src.height);
    let xtab = area_taps(src.width, width);
    let ytab = area_taps(src.height, height);
    // horizontal pass, once per source row: (src.height, width)
    let mut rows = Planar::<CN>::zeros(width, src.height);
    for (y, buf) in rows.data.chunks_exact_mut(width).enumerate() {
        let s = src.row(y);
        for xt in &xtab {
            let (b, v) = (&mut buf[xt.di], s[xt.si]);
            for c in 0..CN {
                b[c] += v[c] * xt.alpha;
            }
        }
    }
    // vertical pass: (height, width)
    let mut dst = Planar::zeros(width, height);
    for tap in &ytab {
        let buf = rows.row(tap.si);
        let row = &mut dst.data[tap.di * width..(tap.di + 1) * width];
        for (d, b) in row.iter_mut().zip(buf) {
            for c in 0..CN {
                d[c] += tap.alpha * b[c];
            }
        }
    }
    dst
}

/// Two-tap linear kernel for one destination coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LinearTap {
    s0: usize,
    s1: usize,
    w0: f32,
    w1: f32,
}

/// `INTER_LINEAR` taps along x: out-of-range positions snap to the edge pixel (weight reset).
fn linear_taps_x(ssize: usize, dsize: usize) -> Vec<LinearTap> {
    let scale = cv_scale(ssize, dsize);
    (0..dsize)
        .map(|dx| {
            let f = ((dx as f64 + 0.5) * scale - 0.5) as f32;
            let mut sx = f.floor() as i64;
            let mut fx = f - sx as f32;
            if sx < 0 {
                (sx, fx) = (0, 0.0);
            }
            if sx >= ssize as i64 - 1 {
                (sx, fx) = (ssize as i64 - 1, 0.0);
            }
            let s0 = sx as usize;
            LinearTap {
                s0,
                s1: (s0 + 1).min(ssize - 1),
                w0: 1.0 - fx,
                w1: fx,
            }
        })
        .collect()
}

/// `INTER_LINEAR` taps along y: weights kept, row indices clamped (OpenCV's row border).
fn linear_taps_y(ssize: usize, dsize: usize) -> Vec<LinearTap> {
    let scale = cv_scale(ssize, dsize);
    let last = ssize as i64 - 1;
    (0..dsize)
        .map(|dy| {
            let f = ((dy as f64 + 0.5) * scale - 0.5) as f32;
            let sy = f.floor() as i64;
            let fy = f - sy as f32;
            LinearTap {
                s0: sy.clamp(0, last) as usize,
                s1: (sy + 1).clamp(0, last) as usize,
                w0: 1.0 - fy,
                w1: fy,
            }
        })
        .collect()
}

/// `cv2.resize(src, (width, height), interpolation=cv2.INTER_LINEAR)` for float images.
pub(crate) fn resize_linear<const CN: usize>(
    src: &Planar<CN>,
    width: usize,
    height: usize,
) -> Planar<CN> {
    let xtab = linear_taps_x(src.width, width);
    let ytab = linear_taps_y(src.height, height);
    // horizontal pass over every source row: (src.height, width)
    let mut rows = Planar::<CN>::zeros(width, src.height);
    for (y, out) in rows.data.chunks_exact_mut(width).enumerate() {
        let s = src.row(y);
        for (o, t) in out.iter_mut().zip(&xtab) {
            let (a, b) = (s[t.s0], s[t.s1]);
            for c in 0..CN {
                o[c] = a[c] * t.w0 + b[c] * t.w1;
            }
        }
    }
    // vertical pass: (height, width)
    let mut dst = Planar::zeros(width, height);
    for (out, t) in dst.data.chunks_exact_mut(width).zip(&ytab) {
        let (r0, r1) = (rows.row(t.s0), rows.row(t.s1));
        for ((d, a), b) in out.iter_mut().zip(r0).zip(r1) {
            for c in 0..CN {
                d[c] = a[c] * t.w0 + b[c] * t.w1;
            }
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Planar<1> {
        let data = (0..w * h).map(|i| [i as f32]).collect();
        Planar {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn area_taps_of_an_integer_scale_average_pairs() {
        let taps = area_taps(4, 2);
        let w: Vec<(usize, usize, f32)> = taps.iter().map(|t| (t.di, t.si, t.alpha)).collect();
        assert_eq!(w, vec![(0, 0, 0.5), (0, 1, 0.5), (1, 2, 0.5), (1, 3, 0.5)]);
    }

    #[test]
    fn area_taps_of_a_fractional_scale_use_overlaps() {
        // 6 -> 5: scale 1.2; cell 1 covers [1.2, 2.4): 0.8 of pixel 1, 0.4 of pixel 2.
        let taps: Vec<_> = area_taps(6, 5).into_iter().filter(|t| t.di == 1).collect();
        assert_eq!(taps.len(), 2);
        assert_eq!(taps[0].si, 1);
        assert!((taps[0].alpha - 0.8 / 1.2).abs() < 1e-6);
        assert_eq!(taps[1].si, 2);
        assert!((taps[1].alpha - 0.4 / 1.2).abs() < 1e-6);
    }

    #[test]
    fn area_weights_sum_to_one_per_destination_pixel() {
        for (s, d) in [(37, 30), (512, 426), (3, 2), (2, 1), (7, 5)] {
            let mut sums = vec![0.0f32; d];
            for t in area_taps(s, d) {
                sums[t.di] += t.alpha;
            }
            assert!(
                sums.iter().all(|v| (v - 1.0).abs() < 1e-3),
                "{s}->{d}: {sums:?}"
            );
        }
    }

    #[test]
    fn area_resize_preserves_a_constant() {
        let src = Planar {
            width: 13,
            height: 9,
            data: vec![[0.25f32; 2]; 13 * 9],
        };
        let dst = resize_area(&src, 10, 7);
        assert!(dst.data.iter().flatten().all(|v| (v - 0.25).abs() < 1e-6));
    }

    #[test]
    fn linear_resize_to_the_same_size_is_the_identity() {
        let src = ramp(5, 4);
        assert_eq!(resize_linear(&src, 5, 4), src);
    }

    #[test]
    fn linear_upscale_uses_half_pixel_centres_and_clamps() {
        // 2 -> 4: positions -0.25, 0.25, 0.75, 1.25 -> 0, 0.25, 0.75, 1 (clamped).
        let src = Planar {
            width: 2,
            height: 1,
            data: vec![[0.0f32], [1.0]],
        };
        let dst = resize_linear(&src, 4, 1);
        assert_eq!(dst.data, vec![[0.0], [0.25], [0.75], [1.0]]);
    }
}
