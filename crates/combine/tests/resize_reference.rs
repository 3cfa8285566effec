//! The fast resizer (`deda_combine::Resizer`) against the first one, kept here only as the
//! reference: all-`u32` arithmetic, 14-bit weights; the two may differ by one level.
use deda_combine::Resizer;
use image::RgbImage;

const PRECISION: u32 = 14;
const ONE: u32 = 1 << PRECISION;
const HALF: u32 = 1 << (PRECISION - 1);
/// The two kernels round differently (13-bit packed horizontal weights in the fast one): every
/// channel value may differ by one level, no more.
const ONE_LEVEL: deda_parity::Tolerance = deda_parity::Tolerance { abs: 1.0, rel: 0.0 };

/// Filter taps of one resize axis: for each output index, a first source index and `n` weights.
#[derive(Debug, Default, Clone)]
struct RefTaps {
    starts: Vec<u32>,
    weights: Vec<u32>,
    n: usize,
    tmp: Vec<f64>,
}

impl RefTaps {
    /// Taps mapping the source window `[offset, offset + len)` (source size `src`) onto `dst`
    /// output pixels.
    fn build(&mut self, offset: f64, len: f64, src: u32, dst: u32) {
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
                row[0] = ONE;
                continue;
            }
            let (mut sum, mut best) = (0, 0);
            for k in 0..count {
                row[k] = (weight(f64::from(lo) + k as f64 + 0.5, center) / total * f64::from(ONE))
                    .round() as u32;
                sum += row[k];
                if row[k] > row[best] {
                    best = k;
                }
            }
            row[best] = (row[best] + ONE).saturating_sub(sum);
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

/// One horizontal row with exactly `N` taps per output pixel (unrolled, no inner bounds checks).
fn h_row<const N: usize>(in_row: &[u8], out_row: &mut [u8], taps: &RefTaps) {
    for ((px, &start), w) in out_row
        .chunks_exact_mut(3)
        .zip(&taps.starts)
        .zip(taps.weights.chunks_exact(N))
    {
        let s0 = start as usize * 3;
        let (Some(t), Ok(w)) = (in_row.get(s0..s0 + 3 * N), <&[u32; N]>::try_from(w)) else {
            continue;
        };
        let mut acc = [HALF; 3];
        for k in 0..N {
            acc[0] += w[k] * u32::from(t[3 * k]);
            acc[1] += w[k] * u32::from(t[3 * k + 1]);
            acc[2] += w[k] * u32::from(t[3 * k + 2]);
        }
        px[0] = (acc[0] >> PRECISION).min(255) as u8;
        px[1] = (acc[1] >> PRECISION).min(255) as u8;
        px[2] = (acc[2] >> PRECISION).min(255) as u8;
    }
}

/// One horizontal row with any number of taps.
fn h_row_any(in_row: &[u8], out_row: &mut [u8], taps: &RefTaps) {
    let n = taps.n;
    for ((px, &start), w) in out_row
        .chunks_exact_mut(3)
        .zip(&taps.starts)
        .zip(taps.weights.chunks_exact(n))
    {
        let mut acc = [HALF; 3];
        let s0 = start as usize * 3;
        let t = &in_row[s0.min(in_row.len())..(s0 + n * 3).min(in_row.len())];
        for (&wk, t) in w.iter().zip(t.chunks_exact(3)) {
            acc[0] += wk * u32::from(t[0]);
            acc[1] += wk * u32::from(t[1]);
            acc[2] += wk * u32::from(t[2]);
        }
        for c in 0..3 {
            px[c] = (acc[c] >> PRECISION).min(255) as u8;
        }
    }
}

/// A reusable resizer (owns its scratch buffers): scale-to-cover or any source window to any
/// output size, separable triangle filter, 14-bit fixed point.
#[derive(Debug, Default, Clone)]
struct ReferenceResizer {
    h: RefTaps,
    v: RefTaps,
    rows: Vec<u8>,
    acc: Vec<u32>,
}

impl ReferenceResizer {
    /// Empty scratch space.
    /// Resizes `src` to cover `out` (scale to cover, centre crop), writing every pixel of `out`.
    ///
    /// # Panics
    /// If `src` or `out` has no pixels.
    fn resize_cover(&mut self, src: &RgbImage, out: &mut RgbImage) {
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
    fn resize_region(&mut self, src: &RgbImage, window: (f64, f64, f64, f64), out: &mut RgbImage) {
        assert!(
            src.width() > 0 && src.height() > 0 && out.width() > 0 && out.height() > 0,
            "resize of an empty image"
        );
        let (dw, dh) = (out.width(), out.height());
        self.h.build(window.0, window.2, src.width(), dw);
        self.v.build(window.1, window.3, src.height(), dh);
        let (row0, row_end) = self.v.range();
        let row_end = row_end.min(src.height());
        self.horizontal_pass(src, row0, row_end, dw);
        self.vertical_pass(row0, out);
    }

    fn horizontal_pass(&mut self, src: &RgbImage, row0: u32, row_end: u32, dw: u32) {
        let stride = dw as usize * 3;
        let src_stride = src.width() as usize * 3;
        // The unrolled rows need every window inside the source (true unless it is narrower).
        let n = if src.width() as usize >= self.h.n {
            self.h.n
        } else {
            0
        };
        self.rows.clear();
        self.rows.resize((row_end - row0) as usize * stride, 0);
        let raw: &[u8] = src.as_raw();
        for (y, out_row) in (row0..row_end).zip(self.rows.chunks_exact_mut(stride)) {
            let in_row = &raw[y as usize * src_stride..(y as usize + 1) * src_stride];
            match n {
                2 => h_row::<2>(in_row, out_row, &self.h),
                3 => h_row::<3>(in_row, out_row, &self.h),
                4 => h_row::<4>(in_row, out_row, &self.h),
                _ => h_row_any(in_row, out_row, &self.h),
            }
        }
    }

    fn vertical_pass(&mut self, row0: u32, out: &mut RgbImage) {
        let stride = out.width() as usize * 3;
        let n = self.v.n;
        let rows_avail = self.rows.len() / stride.max(1);
        self.acc.resize(stride, 0);
        for ((out_row, &start), w) in out
            .chunks_exact_mut(stride)
            .zip(&self.v.starts)
            .zip(self.v.weights.chunks_exact(n))
        {
            self.acc.fill(HALF);
            let first = (start - row0) as usize;
            for (k, &wk) in w.iter().enumerate() {
                let r = first + k;
                if wk == 0 || r >= rows_avail {
                    continue;
                }
                let row = &self.rows[r * stride..(r + 1) * stride];
                for (a, &p) in self.acc.iter_mut().zip(row) {
                    *a += wk * u32::from(p);
                }
            }
            for (o, &a) in out_row.iter_mut().zip(&self.acc) {
                *o = (a >> PRECISION).min(255) as u8;
            }
        }
    }
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
        ((597, 448), (448, 448)),
        ((448, 597), (448, 448)),
        ((448, 448), (448, 448)),
    ];
    for (i, ((sw, sh), (dw, dh))) in cases.into_iter().enumerate() {
        let src = noise(sw, sh, i as u32);
        let (mut a, mut b) = (RgbImage::new(dw, dh), RgbImage::new(dw, dh));
        let shape = [dh as usize, dw as usize, 3];
        fast.resize_cover(&src, &mut a);
        reference.resize_cover(&src, &mut b);
        deda_parity::assert_close(
            &format!("{sw}x{sh} -> {dw}x{dh}"),
            a.as_raw(),
            b.as_raw(),
            &shape,
            ONE_LEVEL,
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
        deda_parity::assert_close(
            &format!("window of {sw}x{sh} -> {dw}x{dh}"),
            a.as_raw(),
            b.as_raw(),
            &shape,
            ONE_LEVEL,
        );
    }
}
