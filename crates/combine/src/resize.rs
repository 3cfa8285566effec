//! Resizing the CIP to cover the canvas: scale to cover, centre crop, separable triangle filter
//! (bilinear when enlarging, area-like when shrinking) in fixed point.
//!
//! The horizontal pass packs each source pixel's three channels into one `u64` (21-bit lanes)
//! so a tap is one multiply-add for all channels, with 13-bit weights (a lane holds at most
//! `255 · 2¹³ + 2¹²` < 2²¹, so lanes never carry into each other). The vertical pass runs over
//! whole rows with 14-bit `u16` weights, a loop the compiler vectorises on baseline x86-64.
//! Results may differ from exact 14-bit arithmetic by one level (tested against the first,
//! all-`u32` implementation).
use image::RgbImage;

/// Weight precision of the horizontal pass.
const H_PRECISION: u32 = 13;
/// Weight precision of the vertical pass.
const V_PRECISION: u32 = 14;
const V_HALF: u32 = 1 << (V_PRECISION - 1);
/// Bits per channel lane of a packed pixel.
const LANE: u32 = 21;
/// Rounding offset of the horizontal pass, in every lane.
const H_HALF: u64 = (1 << (H_PRECISION - 1)) * (1 + (1 << LANE) + (1 << (2 * LANE)));

/// Filter taps of one resize axis: for each output index, a first source index and `n` weights.
#[derive(Debug, Default, Clone)]
pub(crate) struct Taps {
    starts: Vec<u32>,
    weights: Vec<u32>,
    n: usize,
    tmp: Vec<f64>,
}

impl Taps {
    /// Taps mapping the source window `[offset, offset + len)` (source size `src`) onto `dst`
    /// output pixels, with weights summing to `1 << precision`.
    pub(crate) fn build(&mut self, offset: f64, len: f64, src: u32, dst: u32, precision: u32) {
        let one = 1u32 << precision;
        let ratio = len / f64::from(dst);
        let support = ratio.max(1.0);
        let weight = |x: f64, center: f64| (1.0 - ((x - center) / support).abs()).max(0.0);
        // First pass: each output's range of source pixels with a non-zero weight.
        self.starts.clear();
        let mut counts = std::mem::take(&mut self.tmp);
        counts.clear();
        for i in 0..dst as usize {
            let center = offset + (i as f64 + 0.5) * ratio;
            let lo = ((center - support).floor().max(0.0) as u32).min(src - 1);
            let hi = ((center + support).ceil().max(0.0) as u32).clamp(lo + 1, src);
            let mut first = lo;
            while first + 1 < hi && weight(f64::from(first) + 0.5, center) <= 0.0 {
                first += 1;
            }
            let mut end = hi;
            while end > first + 1 && weight(f64::from(end - 1) + 0.5, center) <= 0.0 {
                end -= 1;
            }
            self.starts.push(first);
            counts.push(f64::from(end - first));
        }
        self.n = counts.iter().fold(1.0f64, |a, &b| a.max(b)) as usize;
        self.weights.clear();
        self.weights.resize(self.n * dst as usize, 0);
        let rows = self.weights.chunks_exact_mut(self.n);
        for (i, ((row, &lo), &count)) in rows.zip(&self.starts).zip(&counts).enumerate() {
            let center = offset + (i as f64 + 0.5) * ratio;
            let count = count as usize;
            let total: f64 = (0..count)
                .map(|k| weight(f64::from(lo) + k as f64 + 0.5, center))
                .sum();
            if total <= 0.0 {
                // The window lies beyond the image: take the nearest pixel.
                row[0] = one;
                continue;
            }
            let (mut sum, mut best) = (0, 0);
            for k in 0..count {
                row[k] = (weight(f64::from(lo) + k as f64 + 0.5, center) / total * f64::from(one))
                    .round() as u32;
                sum += row[k];
                if row[k] > row[best] {
                    best = k;
                }
            }
            row[best] = (row[best] + one).saturating_sub(sum);
        }
        // Keep every tap window inside the source: shift windows that would run past the end
        // (their extra weights are zero).
        for (i, st) in self.starts.iter_mut().enumerate() {
            let over = (*st as usize + self.n).saturating_sub(src as usize);
            if over > 0 {
                let row = &mut self.weights[i * self.n..(i + 1) * self.n];
                let shift = over.min(*st as usize);
                row.rotate_right(shift);
                *st -= shift as u32;
            }
        }
        self.tmp = counts;
    }

    /// The source index range `[lo, hi)` the taps read (`hi` may pass the source's end when it
    /// is narrower than a window; those taps have zero weight).
    fn range(&self) -> (u32, u32) {
        let lo = self.starts.iter().copied().min().unwrap_or(0);
        let hi = self
            .starts
            .iter()
            .map(|&s| s as usize + self.n)
            .max()
            .unwrap_or(0);
        (lo, hi as u32)
    }
}

/// One source pixel's channels in three 21-bit lanes.
#[inline]
fn pack(p: &[u8]) -> u64 {
    u64::from(p[0]) | u64::from(p[1]) << LANE | u64::from(p[2]) << (2 * LANE)
}

/// One horizontal row with exactly `N` taps per output pixel.
fn h_row<const N: usize>(packed: &[u64], out_row: &mut [u8], starts: &[u32], weights: &[u64]) {
    for ((px, &start), w) in out_row
        .chunks_exact_mut(3)
        .zip(starts)
        .zip(weights.chunks_exact(N))
    {
        let s = start as usize;
        let (Some(t), Ok(w)) = (packed.get(s..s + N), <&[u64; N]>::try_from(w)) else {
            continue;
        };
        let mut acc = H_HALF;
        for k in 0..N {
            acc += w[k] * t[k];
        }
        px[0] = (acc >> H_PRECISION) as u8;
        px[1] = (acc >> (LANE + H_PRECISION)) as u8;
        px[2] = (acc >> (2 * LANE + H_PRECISION)) as u8;
    }
}

/// One horizontal row with any number of taps.
fn h_row_any(packed: &[u64], out_row: &mut [u8], starts: &[u32], weights: &[u64], n: usize) {
    for ((px, &start), w) in out_row
        .chunks_exact_mut(3)
        .zip(starts)
        .zip(weights.chunks_exact(n))
    {
        let s = start as usize;
        let t = &packed[s.min(packed.len())..(s + n).min(packed.len())];
        let acc = w.iter().zip(t).fold(H_HALF, |a, (&wk, &p)| a + wk * p);
        px[0] = (acc >> H_PRECISION) as u8;
        px[1] = (acc >> (LANE + H_PRECISION)) as u8;
        px[2] = (acc >> (2 * LANE + H_PRECISION)) as u8;
    }
}

/// One output row of the vertical pass with exactly `N` taps: `out[x] = Σ w[k] · rows[k][x]`.
fn v_row<const N: usize>(rows: [&[u8]; N], w: [u16; N], out: &mut [u8]) {
    let len = out.len();
    if rows.iter().any(|r| r.len() < len) {
        return;
    }
    let rows = rows.map(|r| &r[..len]);
    for (x, o) in out.iter_mut().enumerate() {
        let mut a = V_HALF;
        for k in 0..N {
            a += u32::from(w[k]) * u32::from(rows[k][x]);
        }
        *o = (a >> V_PRECISION).min(255) as u8;
    }
}

/// A reusable resizer (owns its scratch buffers): scale-to-cover or any source window to any
/// output size, separable triangle filter in fixed point.
#[derive(Debug, Default, Clone)]
pub struct Resizer {
    h: Taps,
    v: Taps,
    /// Horizontal weights as `u64` multipliers of packed pixels.
    h_weights: Vec<u64>,
    /// Horizontal tap starts relative to the first packed column.
    h_starts: Vec<u32>,
    /// Vertical weights.
    v_weights: Vec<u16>,
    packed: Vec<u64>,
    rows: Vec<u8>,
    acc: Vec<u32>,
}

impl Resizer {
    /// Empty scratch space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resizes `src` to cover `out` (scale to cover, centre crop), writing every pixel of `out`.
    ///
    /// # Panics
    /// If `src` or `out` has no pixels.
    pub fn resize_cover(&mut self, src: &RgbImage, out: &mut RgbImage) {
        let (sw, sh) = (f64::from(src.width()), f64::from(src.height()));
        let (dw, dh) = (out.width(), out.height());
        let scale = (f64::from(dw) / sw).max(f64::from(dh) / sh);
        let (cw, ch) = (f64::from(dw) / scale, f64::from(dh) / scale);
        self.resize_region(src, ((sw - cw) / 2.0, (sh - ch) / 2.0, cw, ch), out);
    }

    /// Resizes the source window `(x, y, w, h)` (source pixels, may be fractional) of `src`
    /// onto all of `out`. Resizing the whole image and then cropping gives the same pixels.
    ///
    /// # Panics
    /// If `src` or `out` has no pixels.
    pub fn resize_region(
        &mut self,
        src: &RgbImage,
        window: (f64, f64, f64, f64),
        out: &mut RgbImage,
    ) {
        assert!(
            src.width() > 0 && src.height() > 0 && out.width() > 0 && out.height() > 0,
            "resize of an empty image"
        );
        let (dw, dh) = (out.width(), out.height());
        self.h
            .build(window.0, window.2, src.width(), dw, H_PRECISION);
        self.v
            .build(window.1, window.3, src.height(), dh, V_PRECISION);
        let (row0, row_end) = self.v.range();
        self.horizontal_pass(src, row0, row_end, dw);
        self.vertical_pass(row0, out);
    }

    /// Filters source rows `[row0, row_end)` horizontally into `self.rows` (rows past the
    /// source's end stay black; their weights are zero).
    fn horizontal_pass(&mut self, src: &RgbImage, row0: u32, row_end: u32, dw: u32) {
        let stride = dw as usize * 3;
        let (col0, col_end) = self.h.range();
        let src_w = src.width() as usize;
        self.h_starts.clear();
        self.h_starts
            .extend(self.h.starts.iter().map(|&s| s - col0));
        self.h_weights.clear();
        self.h_weights
            .extend(self.h.weights.iter().map(|&w| u64::from(w)));
        self.packed.clear();
        self.packed.resize((col_end - col0) as usize, 0);
        self.rows.clear();
        self.rows.resize((row_end - row0) as usize * stride, 0);
        let raw: &[u8] = src.as_raw();
        let in_cols = (col0 as usize).min(src_w)..(col_end as usize).min(src_w);
        let n = self.h.n;
        for (y, out_row) in (row0..row_end).zip(self.rows.chunks_exact_mut(stride)) {
            if y >= src.height() {
                break;
            }
            let row = &raw[y as usize * src_w * 3..(y as usize + 1) * src_w * 3];
            let pixels = &row[in_cols.start * 3..in_cols.end * 3];
            for (p, px) in self.packed.iter_mut().zip(pixels.chunks_exact(3)) {
                *p = pack(px);
            }
            let (packed, starts, w) = (&self.packed[..], &self.h_starts[..], &self.h_weights[..]);
            match n {
                1 => h_row::<1>(packed, out_row, starts, w),
                2 => h_row::<2>(packed, out_row, starts, w),
                3 => h_row::<3>(packed, out_row, starts, w),
                4 => h_row::<4>(packed, out_row, starts, w),
                _ => h_row_any(packed, out_row, starts, w, n),
            }
        }
    }

    fn vertical_pass(&mut self, row0: u32, out: &mut RgbImage) {
        let stride = out.width() as usize * 3;
        let n = self.v.n;
        self.v_weights.clear();
        self.v_weights
            .extend(self.v.weights.iter().map(|&w| w as u16));
        let rows = &self.rows;
        let row = |r: usize| rows.get(r * stride..(r + 1) * stride).unwrap_or(&[]);
        for ((out_row, &start), w) in out
            .chunks_exact_mut(stride)
            .zip(&self.v.starts)
            .zip(self.v_weights.chunks_exact(n))
        {
            let r = (start - row0) as usize;
            match *w {
                [w0] => v_row([row(r)], [w0], out_row),
                [w0, w1] => v_row([row(r), row(r + 1)], [w0, w1], out_row),
                [w0, w1, w2] => v_row([row(r), row(r + 1), row(r + 2)], [w0, w1, w2], out_row),
                [w0, w1, w2, w3] => v_row(
                    [row(r), row(r + 1), row(r + 2), row(r + 3)],
                    [w0, w1, w2, w3],
                    out_row,
                ),
                _ => {
                    self.acc.clear();
                    self.acc.resize(stride, V_HALF);
                    for (k, &wk) in w.iter().enumerate() {
                        for (a, &p) in self.acc.iter_mut().zip(row(r + k)) {
                            *a += u32::from(wk) * u32::from(p);
                        }
                    }
                    for (o, &a) in out_row.iter_mut().zip(&self.acc) {
                        *o = (a >> V_PRECISION).min(255) as u8;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resize_reference::ReferenceResizer;

    #[test]
    fn constant_image_stays_constant_at_any_size() {
        let src = RgbImage::from_pixel(37, 23, image::Rgb([10, 200, 77]));
        let mut r = Resizer::default();
        for (w, h) in [(1, 1), (5, 90), (448, 448), (13, 7)] {
            let mut out = RgbImage::new(w, h);
            r.resize_cover(&src, &mut out);
            assert!(out.pixels().all(|p| p.0 == [10, 200, 77]), "{w}x{h}");
        }
    }

    #[test]
    fn cover_crops_the_centre() {
        // Left third red, middle green, right third blue; a square cover keeps the middle (the
        // outermost columns may blend with the neighbours, as resize-then-crop would).
        let src = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let mut out = RgbImage::new(50, 50);
        Resizer::default().resize_cover(&src, &mut out);
        for (x, _, p) in out.enumerate_pixels() {
            if (1..49).contains(&x) {
                assert_eq!(p.0, [0, 255, 0], "column {x}");
            }
        }
        assert!(out.get_pixel(0, 0).0[0] > 0 && out.get_pixel(49, 0).0[2] > 0);
    }

    #[test]
    fn identity_size_is_exact() {
        let src = RgbImage::from_fn(17, 11, |x, y| {
            image::Rgb([(x * 13) as u8, (y * 21) as u8, 5])
        });
        let mut out = RgbImage::new(17, 11);
        Resizer::default().resize_cover(&src, &mut out);
        assert_eq!(out, src);
    }

    fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        RgbImage::from_fn(w, h, |_, _| {
            let mut next = || {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                s as u8
            };
            image::Rgb([next(), next(), next()])
        })
    }

    #[test]
    fn matches_the_reference_kernel_within_one_level() {
        let mut fast = Resizer::default();
        let mut reference = ReferenceResizer::default();
        let cases = [
            ((640, 480), (448, 448)),
            ((480, 640), (512, 512)),
            ((500, 375), (448, 448)),
            ((37, 23), (448, 300)),
            ((1000, 900), (97, 131)),
            ((3, 2), (7, 9)),
            ((2, 1), (1, 1)),
            ((1, 5), (6, 2)),
            ((2500, 1700), (64, 64)),
        ];
        for (i, ((sw, sh), (dw, dh))) in cases.into_iter().enumerate() {
            let src = noise(sw, sh, i as u32);
            let (mut a, mut b) = (RgbImage::new(dw, dh), RgbImage::new(dw, dh));
            fast.resize_cover(&src, &mut a);
            reference.resize_cover(&src, &mut b);
            let max = a
                .as_raw()
                .iter()
                .zip(b.as_raw())
                .map(|(&x, &y)| x.abs_diff(y))
                .max();
            assert!(
                max <= Some(1),
                "{sw}x{sh} -> {dw}x{dh}: max difference {max:?}"
            );
            // A fractional window (as the loader's random crops use).
            let window = (
                sw as f64 * 0.13,
                sh as f64 * 0.21,
                sw as f64 * 0.6,
                sh as f64 * 0.7,
            );
            fast.resize_region(&src, window, &mut a);
            reference.resize_region(&src, window, &mut b);
            let max = a
                .as_raw()
                .iter()
                .zip(b.as_raw())
                .map(|(&x, &y)| x.abs_diff(y))
                .max();
            assert!(
                max <= Some(1),
                "window of {sw}x{sh}: max difference {max:?}"
            );
        }
    }
}
