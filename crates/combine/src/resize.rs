//! Resizing the CIP to cover the canvas: scale to cover, centre crop, separable triangle filter
//! (bilinear when enlarging, area-like when shrinking) in fixed point.
//!
//! The horizontal pass packs each source pixel's three channels into one `u64` (21-bit lanes)
//! so a tap is one multiply-add for all channels, with 13-bit weights (a lane holds at most
//! `255 · 2¹³ + 2¹²` < 2²¹, so lanes never carry into each other). The vertical pass runs over
//! whole rows with 14-bit `u16` weights, a loop the compiler vectorises on baseline x86-64.
//! Results may differ from exact 14-bit arithmetic by one level (tested against the first,
//! all-`u32` implementation, `tests/resize_reference.rs`).
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

/// How every output row of the horizontal pass is made from its source row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HorizontalPlan {
    /// Output pixel `i` is source pixel `col0 + i` (scale 1, integer offset).
    Copy { col0: usize },
    /// Output pixel `i` is the rounded mean of source pixels `col0 + i` and `col0 + i + 1`
    /// (scale 1 with a half-pixel offset, as a cover crop of an odd margin gives).
    Average { col0: usize },
    /// Every output pixel has the same weights over consecutive source pixels from `col0 + i`.
    Uniform { col0: usize },
    /// Per-pixel taps (any scale) over source columns from `col0` (past the source's end they
    /// read black with zero weight).
    General { col0: usize },
}

impl Default for HorizontalPlan {
    fn default() -> Self {
        HorizontalPlan::General { col0: 0 }
    }
}

/// A reusable resizer (owns its scratch buffers): scale-to-cover or any source window to any
/// output size, separable triangle filter in fixed point.
///
/// Scale-1 axes (a CIP stored at the canvas size, a crop) take exact shortcuts that give the
/// same bytes as the general kernels: a copy, a rounded two-pixel mean, or one weight set for
/// the whole row, each a loop over bytes that the compiler vectorises; when the vertical axis
/// needs no filtering the horizontal pass writes straight into the output.
#[derive(Debug, Default, Clone)]
pub struct Resizer {
    h: HorizontalPass,
    v: Taps,
    /// Vertical weights.
    v_weights: Vec<u16>,
    rows: Vec<u8>,
    acc: Vec<u32>,
    zeros: Vec<u8>,
    /// Tests only: take no shortcut, so the shortcuts can be compared with the general path.
    #[cfg(test)]
    general_only: bool,
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
            .taps
            .build(window.0, window.2, src.width(), dw, H_PRECISION);
        self.v
            .build(window.1, window.3, src.height(), dh, V_PRECISION);
        let shortcuts = !self.general_only();
        self.h.plan(src.width(), shortcuts);
        let stride = dw as usize * 3;
        let src_stride = src.width() as usize * 3;
        let raw: &[u8] = src.as_raw();
        if self.v.n == 1 && shortcuts {
            // Every output row is one source row filtered horizontally (weight 2¹⁴ is exact).
            for (out_row, &y) in out.chunks_exact_mut(stride).zip(&self.v.starts) {
                self.h
                    .run(&raw[y as usize * src_stride..][..src_stride], out_row);
            }
            return;
        }
        let (row0, row_end) = self.v.range();
        if let (HorizontalPlan::Copy { col0 }, true) = (self.h.plan, shortcuts) {
            // Read the source rows in place; rows past its end are black (zero weight).
            self.zeros.clear();
            self.zeros.resize(stride, 0);
            let zeros = &self.zeros[..];
            let row = |r: usize| {
                let y = row0 as usize + r;
                raw.get(y * src_stride + col0 * 3..)
                    .and_then(|t| t.get(..stride))
                    .unwrap_or(zeros)
            };
            vertical_pass(&self.v, &mut self.v_weights, &mut self.acc, row, out, true);
            return;
        }
        self.horizontal_pass(src, row0, row_end, dw);
        let rows = &self.rows;
        let row = |r: usize| rows.get(r * stride..(r + 1) * stride).unwrap_or(&[]);
        vertical_pass(
            &self.v,
            &mut self.v_weights,
            &mut self.acc,
            row,
            out,
            shortcuts,
        );
    }

    #[cfg(test)]
    fn general_only(&self) -> bool {
        self.general_only
    }

    #[cfg(not(test))]
    fn general_only(&self) -> bool {
        false
    }

    /// Filters source rows `[row0, row_end)` horizontally into `self.rows` (rows past the
    /// source's end stay black; their weights are zero).
    fn horizontal_pass(&mut self, src: &RgbImage, row0: u32, row_end: u32, dw: u32) {
        let stride = dw as usize * 3;
        let src_stride = src.width() as usize * 3;
        self.rows.clear();
        self.rows.resize((row_end - row0) as usize * stride, 0);
        let raw: &[u8] = src.as_raw();
        for (y, out_row) in (row0..row_end).zip(self.rows.chunks_exact_mut(stride)) {
            if y >= src.height() {
                break;
            }
            self.h
                .run(&raw[y as usize * src_stride..][..src_stride], out_row);
        }
    }
}

/// The horizontal pass: the taps of one resize, the plan chosen for them and its scratch.
#[derive(Debug, Default, Clone)]
struct HorizontalPass {
    taps: Taps,
    plan: HorizontalPlan,
    /// Tap starts relative to the first packed column (general plan).
    starts: Vec<u32>,
    /// Weights as `u64` multipliers of packed pixels (general plan).
    weights: Vec<u64>,
    packed: Vec<u64>,
    acc: Vec<u32>,
}

impl HorizontalPass {
    /// Chooses the horizontal shortcut, if the taps allow one, and prepares the general
    /// kernel's packed weights otherwise.
    fn plan(&mut self, src_w: u32, shortcuts: bool) {
        let (n, one) = (self.taps.n, 1u32 << H_PRECISION);
        let first = &self.taps.weights[..n];
        let col0 = self.taps.starts.first().copied().unwrap_or(0) as usize;
        let dw = self.taps.starts.len();
        let uniform = shortcuts
            && col0 + dw - 1 + n <= src_w as usize
            && self
                .taps
                .starts
                .iter()
                .enumerate()
                .all(|(i, &s)| s as usize == col0 + i)
            && self.taps.weights.chunks_exact(n).all(|w| w == first);
        self.plan = match (uniform, first) {
            (true, [w]) if *w == one => HorizontalPlan::Copy { col0 },
            (true, [a, b]) if *a == one / 2 && *b == one / 2 => HorizontalPlan::Average { col0 },
            (true, _) => HorizontalPlan::Uniform { col0 },
            (false, _) => HorizontalPlan::General { col0: 0 },
        };
        if !matches!(self.plan, HorizontalPlan::General { .. }) {
            return;
        }
        let (col0, col_end) = self.taps.range();
        self.plan = HorizontalPlan::General {
            col0: col0 as usize,
        };
        // Columns past the source's end are never written, so they stay black for every row.
        self.packed.clear();
        self.packed.resize((col_end - col0) as usize, 0);
        self.starts.clear();
        self.starts
            .extend(self.taps.starts.iter().map(|&s| s - col0));
        self.weights.clear();
        self.weights
            .extend(self.taps.weights.iter().map(|&w| u64::from(w)));
    }

    /// Filters one whole source row into one output row by the plan.
    fn run(&mut self, row: &[u8], out: &mut [u8]) {
        let Self {
            taps,
            plan,
            starts,
            weights,
            packed,
            acc,
        } = self;
        let (starts, weights) = (&starts[..], &weights[..]);
        let len = out.len();
        match *plan {
            HorizontalPlan::Copy { col0 } => out.copy_from_slice(&row[col0 * 3..][..len]),
            HorizontalPlan::Average { col0 } => {
                // (2¹² + 2¹²·a + 2¹²·b) >> 13 is exactly the rounded mean.
                let (a, b) = (&row[col0 * 3..][..len], &row[col0 * 3 + 3..][..len]);
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = ((u16::from(x) + u16::from(y) + 1) >> 1) as u8;
                }
            }
            HorizontalPlan::Uniform { col0 } => {
                acc.clear();
                acc.resize(len, 1 << (H_PRECISION - 1));
                for (k, &w) in taps.weights[..taps.n].iter().enumerate() {
                    let src = &row[(col0 + k) * 3..][..len];
                    for (a, &p) in acc.iter_mut().zip(src) {
                        *a += w * u32::from(p);
                    }
                }
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    *o = (a >> H_PRECISION) as u8;
                }
            }
            HorizontalPlan::General { col0 } => {
                let col0 = col0.min(row.len() / 3);
                let cols = packed.len().min(row.len() / 3 - col0);
                let pixels = &row[col0 * 3..(col0 + cols) * 3];
                for (p, px) in packed.iter_mut().zip(pixels.chunks_exact(3)) {
                    *p = pack(px);
                }
                match taps.n {
                    1 => h_row::<1>(packed, out, starts, weights),
                    2 => h_row::<2>(packed, out, starts, weights),
                    3 => h_row::<3>(packed, out, starts, weights),
                    4 => h_row::<4>(packed, out, starts, weights),
                    n => h_row_any(packed, out, starts, weights, n),
                }
            }
        }
    }
}

/// The vertical pass: output row `y` is the weighted sum of rows `row(start_y − row0 + k)`.
fn vertical_pass<'a>(
    v: &Taps,
    v_weights: &mut Vec<u16>,
    acc: &mut Vec<u32>,
    row: impl Fn(usize) -> &'a [u8],
    out: &mut RgbImage,
    shortcuts: bool,
) {
    let stride = out.width() as usize * 3;
    let n = v.n;
    let row0 = v.range().0;
    v_weights.clear();
    v_weights.extend(v.weights.iter().map(|&w| w as u16));
    const HALF_W: u16 = 1 << (V_PRECISION - 1);
    for ((out_row, &start), w) in out
        .chunks_exact_mut(stride)
        .zip(&v.starts)
        .zip(v_weights.chunks_exact(n))
    {
        let r = (start - row0) as usize;
        match *w {
            [w0] => v_row([row(r)], [w0], out_row),
            [HALF_W, HALF_W] if shortcuts => mean_row(row(r), row(r + 1), out_row),
            [w0, w1] => v_row([row(r), row(r + 1)], [w0, w1], out_row),
            [w0, w1, w2] => v_row([row(r), row(r + 1), row(r + 2)], [w0, w1, w2], out_row),
            [w0, w1, w2, w3] => v_row(
                [row(r), row(r + 1), row(r + 2), row(r + 3)],
                [w0, w1, w2, w3],
                out_row,
            ),
            _ => {
                acc.clear();
                acc.resize(stride, V_HALF);
                for (k, &wk) in w.iter().enumerate() {
                    for (a, &p) in acc.iter_mut().zip(row(r + k)) {
                        *a += u32::from(wk) * u32::from(p);
                    }
                }
                for (o, &a) in out_row.iter_mut().zip(acc.iter()) {
                    *o = (a >> V_PRECISION).min(255) as u8;
                }
            }
        }
    }
}

/// `out = (a + b + 1) / 2` per byte: the vertical pass with two weights of 2¹³, exactly.
fn mean_row(a: &[u8], b: &[u8], out: &mut [u8]) {
    let len = out.len();
    let (Some(a), Some(b)) = (a.get(..len), b.get(..len)) else {
        return;
    };
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = ((u16::from(x) + u16::from(y) + 1) >> 1) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The scale-1 shortcuts (copy, two-pixel mean, uniform weights, direct rows) against the
    /// general kernels, byte for byte, on the windows a CIP stored at the canvas size gives.
    #[test]
    fn shortcuts_equal_the_general_kernels_exactly() {
        let mut fast = Resizer::default();
        let mut general = Resizer {
            general_only: true,
            ..Resizer::default()
        };
        type Case = ((u32, u32), (f64, f64, f64, f64), (u32, u32));
        let cases: [Case; 9] = [
            ((597, 448), (74.5, 0.0, 448.0, 448.0), (448, 448)),
            ((598, 448), (75.0, 0.0, 448.0, 448.0), (448, 448)),
            ((448, 597), (0.0, 74.5, 448.0, 448.0), (448, 448)),
            ((448, 598), (0.0, 75.0, 448.0, 448.0), (448, 448)),
            ((300, 200), (10.25, 3.0, 200.0, 150.0), (200, 150)),
            ((300, 200), (10.0, 3.75, 200.0, 150.0), (200, 150)),
            ((300, 200), (10.5, 3.5, 200.0, 150.0), (200, 150)),
            ((50, 40), (0.0, 0.0, 50.0, 40.0), (50, 40)),
            ((60, 40), (0.3, 0.0, 60.0, 40.0), (60, 40)),
        ];
        for (i, (size, window, (dw, dh))) in cases.into_iter().enumerate() {
            let src = noise(size.0, size.1, 100 + i as u32);
            let (mut a, mut b) = (RgbImage::new(dw, dh), RgbImage::new(dw, dh));
            fast.resize_region(&src, window, &mut a);
            general.resize_region(&src, window, &mut b);
            assert!(a == b, "case {i}: {size:?} {window:?}");
        }
        // The cover of a 597x448 CIP is the half-pixel mean (the plan the bench relies on).
        let src = noise(597, 448, 1);
        let mut out = RgbImage::new(448, 448);
        fast.resize_cover(&src, &mut out);
        assert_eq!(fast.h.plan, HorizontalPlan::Average { col0: 74 });
    }
}
