//! Pasting one CDP layer: premultiply (and box-reduce for strong downscales), then one affine
//! inverse-mapping pass with bilinear sampling over the destination bounding box only, composited
//! "over" the canvas. The layer's effective alpha is kept for the visible-area weights.
//!
//! Texels are four `u16` channels, read as the 16-bit lanes of a `u64` (R, G, B, A from the low
//! end), so a bilinear tap is one multiply for all channels: the mix lerps horizontally and then
//! vertically with 8-bit fractions, rounding after each step (a lane never exceeds
//! `255 · 256 + 128` < 2¹⁶), and the "over" blend divides by 255 in every lane at once. Texel
//! coordinates step along a canvas row in 32.32 fixed point.
use image::{RgbImage, RgbaImage};

/// The low byte of every 16-bit lane.
const LANES: u64 = 0x00FF_00FF_00FF_00FF;
/// 128 in every lane: the rounding offset of a `>> 8`.
const ROUND: u64 = 0x0080_0080_0080_0080;

/// Premultiplied texels (packed, see the module docs) with a one-texel transparent border, so
/// bilinear taps near the edge need no bounds checks.
#[derive(Debug, Default, Clone)]
pub(crate) struct Texture {
    texels: Vec<[u16; 4]>,
    row_acc: Vec<[u32; 4]>,
    wide_acc: Vec<[u64; 4]>,
    /// Width and height of the reduced image, without the border.
    w: u32,
    h: u32,
    /// The padded texel columns and rows `[first, last]` holding any alpha (`None`: none do);
    /// only bilinear quads touching them can show.
    live: Option<([u32; 2], [u32; 2])>,
}

/// Where one layer landed: its clipped bounding box on the canvas and its alpha there.
#[derive(Debug, Default, Clone)]
pub(crate) struct Coverage {
    pub(crate) x0: u32,
    pub(crate) y0: u32,
    pub(crate) w: u32,
    pub(crate) h: u32,
    pub(crate) alpha: Vec<u8>,
}

/// The placement of a layer on the canvas, in canvas pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    /// Source pixels per canvas pixel is `1 / scale` (before any box reduction).
    pub(crate) scale: f32,
    pub(crate) center: (f32, f32),
    pub(crate) flip: bool,
    pub(crate) rotation_deg: f32,
}

#[inline]
fn div255(x: u32) -> u32 {
    ((x + 128) * 257) >> 16
}

/// [`div255`] in 16-bit arithmetic (equal for every `x ≤ 255 · 255`), which vectorises.
#[inline]
fn div255_u16(x: u16) -> u16 {
    let t = x + 128;
    (t + (t >> 8)) >> 8
}

/// [`div255`] in every 16-bit lane of `x` (each lane at most `255 · 255`).
#[inline]
fn div255_lanes(x: u64) -> u64 {
    let t = x + ROUND;
    ((t + ((t >> 8) & LANES)) >> 8) & LANES
}

/// A texel `[r, g, b, a]` as the lanes of a `u64`.
#[inline]
fn lanes(t: [u16; 4]) -> u64 {
    u64::from(t[0]) | u64::from(t[1]) << 16 | u64::from(t[2]) << 32 | u64::from(t[3]) << 48
}

/// Premultiplies one row of RGBA pixels into texels (alpha too is "premultiplied" by 255 and
/// divided back, exactly, so all four channels take the same vectorisable steps).
fn premultiply_row(row: &[u8], dst: &mut [[u16; 4]]) {
    for (t, p) in dst.iter_mut().zip(row.chunks_exact(4)) {
        let a = u16::from(p[3]);
        let m = [a, a, a, 255];
        for c in 0..4 {
            t[c] = div255_u16(u16::from(p[c]) * m[c]);
        }
    }
}

/// An accumulator of box-reduced channel sums (`u32` while `k² · 255²` fits, else `u64`).
trait BoxSum: Copy + Default + std::ops::AddAssign + Into<u64> {
    fn of(x: u32) -> Self;
}

impl BoxSum for u32 {
    #[inline]
    fn of(x: u32) -> Self {
        x
    }
}

impl BoxSum for u64 {
    #[inline]
    fn of(x: u32) -> Self {
        u64::from(x)
    }
}

/// Adds each `k`-pixel block of an RGBA row, premultiplied (alpha as `a · 255`), to `acc`.
fn add_row_blocks<A: BoxSum>(row: &[u8], k: usize, acc: &mut [[A; 4]]) {
    for (sum, block) in acc.iter_mut().zip(row.chunks(4 * k)) {
        let mut s = [0u32; 4];
        for p in block.chunks_exact(4) {
            let a = u32::from(p[3]);
            s[0] += u32::from(p[0]) * a;
            s[1] += u32::from(p[1]) * a;
            s[2] += u32::from(p[2]) * a;
            s[3] += a * 255;
        }
        for c in 0..4 {
            sum[c] += A::of(s[c]);
        }
    }
}

impl Texture {
    /// Loads `src` premultiplied, box-reduced by the integer factor `k` (1 = as is); texels
    /// beyond the image count as transparent.
    pub(crate) fn load(&mut self, src: &RgbaImage, k: u32) {
        let (sw, sh) = src.dimensions();
        let (w, h) = (sw.div_ceil(k), sh.div_ceil(k));
        let pw = w as usize + 2;
        self.w = w;
        self.h = h;
        // Every interior texel is written below; only the border needs clearing.
        self.texels.resize(pw * (h as usize + 2), [0; 4]);
        self.clear_border();
        if k == 1 {
            for (y, row) in src.as_raw().chunks_exact(sw as usize * 4).enumerate() {
                let dst = &mut self.texels[(y + 1) * pw + 1..(y + 2) * pw - 1];
                premultiply_row(row, dst);
            }
        } else if u64::from(k) * u64::from(k) * 255 * 255 <= u64::from(u32::MAX) {
            // A block row sums k² values of at most 255² (and one pixel's sum fits in any case).
            let mut acc = std::mem::take(&mut self.row_acc);
            self.reduce(src, k, &mut acc);
            self.row_acc = acc;
        } else {
            let mut acc = std::mem::take(&mut self.wide_acc);
            self.reduce(src, k, &mut acc);
            self.wide_acc = acc;
        }
        self.live = self.find_live();
    }

    /// The bounding box of the texels with alpha, scanning each row from both ends.
    fn find_live(&self) -> Option<([u32; 2], [u32; 2])> {
        let pw = self.w as usize + 2;
        let mut live: Option<([u32; 2], [u32; 2])> = None;
        for (y, row) in self.texels.chunks_exact(pw).enumerate() {
            let Some(first) = row.iter().position(|t| t[3] > 0) else {
                continue;
            };
            let last = row.iter().rposition(|t| t[3] > 0).unwrap_or(first);
            let (x0, x1, y) = (first as u32, last as u32, y as u32);
            live = Some(match live {
                None => ([x0, x1], [y, y]),
                Some(([a, b], [c, _])) => ([a.min(x0), b.max(x1)], [c, y]),
            });
        }
        live
    }

    /// Makes the one-texel border transparent.
    fn clear_border(&mut self) {
        let pw = self.w as usize + 2;
        let last = self.h as usize + 1;
        for (y, row) in self.texels.chunks_exact_mut(pw).enumerate() {
            if y == 0 || y == last {
                row.fill([0; 4]);
            } else {
                row[0] = [0; 4];
                row[pw - 1] = [0; 4];
            }
        }
    }

    /// Box-reduces `src` by `k` into the texels: each texel is the mean of its block's
    /// premultiplied values (blocks at the right and bottom edges are partial, and their
    /// missing pixels count as transparent).
    fn reduce<A: BoxSum>(&mut self, src: &RgbaImage, k: u32, acc: &mut Vec<[A; 4]>) {
        let (sw, sh) = src.dimensions();
        let pw = self.w as usize + 2;
        let area = u64::from(k) * u64::from(k);
        let row_len = sw as usize * 4;
        let rows = src.as_raw().chunks_exact(row_len);
        for (block_y, block) in (0..sh as usize).step_by(k as usize).enumerate() {
            acc.clear();
            acc.resize(self.w as usize, [A::default(); 4]);
            let n_rows = (k as usize).min(sh as usize - block);
            for row in rows.clone().skip(block).take(n_rows) {
                add_row_blocks(row, k as usize, acc);
            }
            let ty = block_y + 1;
            let dst = &mut self.texels[ty * pw + 1..(ty + 1) * pw - 1];
            for (t, sum) in dst.iter_mut().zip(acc.iter()) {
                let mean = |c: usize| div255(((sum[c].into() + area / 2) / area) as u32) as u16;
                *t = [mean(0), mean(1), mean(2), mean(3)];
            }
        }
    }

    /// Pastes the texture (logical size `logical` in reduced texels) onto `canvas` at
    /// `placement` (with `scale` in canvas pixels per reduced texel), recording its alpha in
    /// `cov`.
    pub(crate) fn paste(
        &self,
        logical: (f32, f32),
        p: Placement,
        canvas: &mut RgbImage,
        cov: &mut Coverage,
    ) {
        let (cw, ch) = canvas.dimensions();
        let (sin, cos) = p.rotation_deg.to_radians().sin_cos();
        let (hw, hh) = (logical.0 * p.scale / 2.0, logical.1 * p.scale / 2.0);
        let ex = cos.abs() * hw + sin.abs() * hh + 2.0;
        let ey = sin.abs() * hw + cos.abs() * hh + 2.0;
        let (cx, cy) = (p.center.0 * cw as f32, p.center.1 * ch as f32);
        let clip = |v: f32, max: u32| (v.max(0.0).min(max as f32)) as u32;
        let (x0, x1) = (clip((cx - ex).floor(), cw), clip((cx + ex).ceil(), cw));
        let (y0, y1) = (clip((cy - ey).floor(), ch), clip((cy + ey).ceil(), ch));
        cov.x0 = x0;
        cov.y0 = y0;
        cov.w = x1 - x0;
        cov.h = y1 - y0;
        cov.alpha.clear();
        cov.alpha.resize(cov.w as usize * cov.h as usize, 0);
        if cov.w == 0 || cov.h == 0 {
            return;
        }
        // Inverse map: canvas offset (dx, dy) -> object offset (ox, oy) -> texel coordinates.
        let inv = 1.0 / p.scale;
        let fl = if p.flip { -1.0 } else { 1.0 };
        // d(sx, sy)/d(canvas x) and d(sx, sy)/d(canvas y).
        let (ax, ay) = (fl * cos * inv, sin * inv);
        let (bx, by) = (-fl * sin * inv, cos * inv);
        // Texel-centre convention and the one-texel border: padded = source + 0.5.
        let (ox, oy) = (logical.0 / 2.0 + 0.5, logical.1 / 2.0 + 0.5);
        let stride = cw as usize * 3;
        let cov_w = cov.w as usize;
        for (row_i, y) in (y0..y1).enumerate() {
            let dy = y as f32 + 0.5 - cy;
            let dx = x0 as f32 + 0.5 - cx;
            let u0 = ox + dx * ax + dy * bx;
            let v0 = oy + dx * ay + dy * by;
            let row = &mut canvas.as_mut()[y as usize * stride + x0 as usize * 3..][..cov_w * 3];
            let alpha = &mut cov.alpha[row_i * cov_w..(row_i + 1) * cov_w];
            self.paste_row(u0, v0, ax, ay, row, alpha);
        }
    }

    /// Pastes one canvas row: pixel `i` samples the texture at `(u0 + du·i, v0 + dv·i)`
    /// (padded texel units: texel `j`'s centre is at `j + 0.5`), in 32.32 fixed point.
    #[inline]
    fn paste_row(&self, u0: f32, v0: f32, du: f32, dv: f32, row: &mut [u8], alpha: &mut [u8]) {
        let pw = self.w as usize + 2;
        let Some(([c0, c1], [r0, r1])) = self.live else {
            return;
        };
        // Quads with a corner in the live box: u in [c0 − 1, c1 + 1), v in [r0 − 1, r1 + 1)
        // (c0, r0 ≥ 1 and c1 ≤ w, r1 ≤ h, as the border is transparent); all others are
        // transparent and skipped anyway.
        let (u_lo, v_lo) = (c0 - 1, r0 - 1);
        let (u_len, v_len) = (c1 + 2 - c0, r1 + 2 - r0);
        let t = &self.texels;
        // Only pixels whose texel coordinates can fall inside the live box are visited; the
        // exact test below still decides each one.
        let (lo_u, hi_u) = span(u0 - u_lo as f32, du, u_len as f32, alpha.len());
        let (lo_v, hi_v) = span(v0 - v_lo as f32, dv, v_len as f32, alpha.len());
        let (lo, hi) = (lo_u.max(lo_v), hi_u.min(hi_v));
        if lo >= hi {
            return;
        }
        let fixed = |c: f64| (c * 4_294_967_296.0).round() as i64;
        let (du_f, dv_f) = (fixed(f64::from(du)), fixed(f64::from(dv)));
        let mut uf = fixed(f64::from(u0) + f64::from(du) * lo as f64);
        let mut vf = fixed(f64::from(v0) + f64::from(dv) * lo as f64);
        let (u_lo_f, v_lo_f) = (i64::from(u_lo) << 32, i64::from(v_lo) << 32);
        let (u_len_f, v_len_f) = (u64::from(u_len) << 32, u64::from(v_len) << 32);
        let pixels = row[lo * 3..hi * 3].chunks_exact_mut(3);
        for (px, a_out) in pixels.zip(&mut alpha[lo..hi]) {
            let (u, v) = (uf, vf);
            uf = uf.wrapping_add(du_f);
            vf = vf.wrapping_add(dv_f);
            // Coordinates below the box wrap to huge unsigned offsets and fail the test too.
            if !(((u - u_lo_f) as u64) < u_len_f && ((v - v_lo_f) as u64) < v_len_f) {
                continue;
            }
            let idx = (v >> 32) as usize * pw + (u >> 32) as usize;
            let Some(quad) = t.get(idx..idx + pw + 2) else {
                continue;
            };
            let (p00, p10) = (lanes(quad[0]), lanes(quad[1]));
            let (p01, p11) = (lanes(quad[pw]), lanes(quad[pw + 1]));
            if (p00 | p10 | p01 | p11) >> 48 == 0 {
                continue;
            }
            let (fu, fv) = (((u >> 24) & 255) as u64, ((v >> 24) & 255) as u64);
            let top = ((p00 * (256 - fu) + p10 * fu + ROUND) >> 8) & LANES;
            let bottom = ((p01 * (256 - fu) + p11 * fu + ROUND) >> 8) & LANES;
            let mixed = ((top * (256 - fv) + bottom * fv + ROUND) >> 8) & LANES;
            let a = mixed >> 48;
            if a == 0 {
                continue;
            }
            *a_out = a as u8;
            // Premultiplied colours never exceed their alpha (every step above is monotone and
            // shared by all lanes), so colour + backdrop · (255 − a) / 255 stays ≤ 255.
            let backdrop = u64::from(px[0]) | u64::from(px[1]) << 16 | u64::from(px[2]) << 32;
            let over = mixed + div255_lanes(backdrop * (255 - a));
            px[0] = over as u8;
            px[1] = (over >> 16) as u8;
            px[2] = (over >> 32) as u8;
        }
    }
}

/// The pixel indices `[lo, hi)` of a row of `n` where `c0 + dc · i` (computed in `f32`) may
/// lie in `[0, max)`: the exact bounds widened by the largest rounding error of that product
/// and sum, in pixels, plus one.
fn span(c0: f32, dc: f32, max: f32, n: usize) -> (usize, usize) {
    let all = (0, n);
    if dc == 0.0 {
        return if c0 >= 0.0 && c0 < max { all } else { (0, 0) };
    }
    let (a, b) = ((0.0 - c0) / dc, (max - c0) / dc);
    let (first, last) = if a < b { (a, b) } else { (b, a) };
    // |rounding error| of c0 + dc·i ≤ (|c0| + |dc·i|) · 2⁻²³ · 2 (two roundings), doubled.
    let slack = (c0.abs() + dc.abs() * n as f32 + max) * (4.0 / 8_388_608.0) / dc.abs() + 1.0;
    let (first, last) = (first - slack, last + slack);
    if !(first.is_finite() && last.is_finite()) {
        return all;
    }
    let lo = first.floor().max(0.0).min(n as f32) as usize;
    let hi = (last.ceil() + 1.0).max(0.0).min(n as f32) as usize;
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first per-pixel loop (bounds test on every pixel of the box, exact one-step bilinear
    /// mix with 16-bit weights before the alpha test, per-channel blend), the reference for
    /// [`Texture::paste_row`].
    fn paste_row_reference(
        tex: &Texture,
        (u0, v0, du, dv): (f32, f32, f32, f32),
        row: &mut [u8],
        alpha: &mut [u8],
    ) {
        let pw = tex.w as usize + 2;
        let (umax, vmax) = ((tex.w + 1) as f32, (tex.h + 1) as f32);
        let channel = |idx: usize, c: usize| u32::from(tex.texels[idx][c]);
        for (i, (px, a_out)) in row.chunks_exact_mut(3).zip(alpha.iter_mut()).enumerate() {
            let u = u0 + du * i as f32;
            let v = v0 + dv * i as f32;
            if !(u >= 0.0 && v >= 0.0 && u < umax && v < vmax) {
                continue;
            }
            let (iu, iv) = (u as usize, v as usize);
            let fu = ((u - iu as f32) * 256.0) as u32;
            let fv = ((v - iv as f32) * 256.0) as u32;
            let w11 = fu * fv;
            let w10 = fu * 256 - w11;
            let w01 = fv * 256 - w11;
            let w00 = 65536 - w10 - w01 - w11;
            let idx = iv * pw + iu;
            let mix = |c: usize| {
                (channel(idx, c) * w00
                    + channel(idx + 1, c) * w10
                    + channel(idx + pw, c) * w01
                    + channel(idx + pw + 1, c) * w11
                    + 32768)
                    >> 16
            };
            let a = mix(3);
            if a == 0 {
                continue;
            }
            *a_out = a as u8;
            let keep = 255 - a;
            for (c, v) in px.iter_mut().enumerate() {
                *v = (mix(c) + div255(u32::from(*v) * keep)).min(255) as u8;
            }
        }
    }

    /// Largest difference between two byte slices.
    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    fn test_texture() -> RgbaImage {
        RgbaImage::from_fn(37, 23, |x, y| {
            let a = if (x * 7 + y * 3) % 5 == 0 {
                0
            } else {
                (x * 9 + y * 11) as u8
            };
            image::Rgba([(x * 5) as u8, (y * 9) as u8, 77, a])
        })
    }

    #[test]
    fn paste_row_is_within_one_level_of_the_reference() {
        let mut tex = Texture::default();
        tex.load(&test_texture(), 1);
        let mut s = 12345u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 20_000) as f32 / 20_000.0
        };
        let (mut worst_rgb, mut worst_alpha, mut pasted) = (0, 0, 0);
        for case in 0..2000 {
            let angle = next() * std::f32::consts::TAU;
            let speed = if case % 7 == 0 { 1e-6 } else { next() * 2.0 };
            let (du, dv) = (speed * angle.cos(), speed * angle.sin());
            let (du, dv) = if case % 11 == 0 { (du, 0.0) } else { (du, dv) };
            let (u0, v0) = (next() * 80.0 - 30.0, next() * 60.0 - 20.0);
            let n = 1 + (next() * 150.0) as usize;
            let backdrop: Vec<u8> = (0..n * 3).map(|i| (i * 31) as u8).collect();
            let (mut r1, mut r2) = (backdrop.clone(), backdrop);
            let (mut a1, mut a2) = (vec![0u8; n], vec![0u8; n]);
            tex.paste_row(u0, v0, du, dv, &mut r1, &mut a1);
            paste_row_reference(&tex, (u0, v0, du, dv), &mut r2, &mut a2);
            worst_rgb = worst_rgb.max(max_diff(&r1, &r2));
            worst_alpha = worst_alpha.max(max_diff(&a1, &a2));
            pasted += a2.iter().filter(|&&a| a > 0).count();
        }
        // The two-step rounding of the mix may move alpha by one level, and a colour by one
        // level from the mix plus one from the blend's alpha.
        assert!(
            worst_alpha <= 1 && worst_rgb <= 2,
            "{worst_alpha} {worst_rgb}"
        );
        assert!(pasted > 10_000, "only {pasted} pixels pasted");
    }

    #[test]
    fn the_live_box_changes_no_pixel() {
        // A texture whose alpha sits in a small island, pasted with and without the box.
        let src = RgbaImage::from_fn(40, 30, |x, y| {
            let a = if (12..20).contains(&x) && (9..14).contains(&y) {
                200
            } else {
                0
            };
            image::Rgba([x as u8 * 6, y as u8 * 8, 90, a])
        });
        let mut tex = Texture::default();
        tex.load(&src, 1);
        assert_eq!(tex.live, Some(([13, 20], [10, 14])));
        let mut whole = tex.clone();
        whole.live = Some(([1, tex.w], [1, tex.h]));
        for case in 0..400 {
            let angle = case as f32 * 0.37;
            let (du, dv) = (0.9 * angle.cos(), 0.9 * angle.sin());
            let (u0, v0) = (
                -10.0 + (case % 23) as f32 * 2.5,
                -5.0 + (case % 17) as f32 * 2.5,
            );
            let (mut r1, mut r2) = (vec![7u8; 60 * 3], vec![7u8; 60 * 3]);
            let (mut a1, mut a2) = (vec![0u8; 60], vec![0u8; 60]);
            tex.paste_row(u0, v0, du, dv, &mut r1, &mut a1);
            whole.paste_row(u0, v0, du, dv, &mut r2, &mut a2);
            assert!(r1 == r2 && a1 == a2, "case {case}");
        }
        tex.load(&RgbaImage::new(5, 5), 1);
        assert_eq!(tex.live, None);
    }

    #[test]
    fn opaque_texels_paste_exactly() {
        let src = RgbaImage::from_fn(9, 7, |x, y| {
            image::Rgba([x as u8 * 20, y as u8 * 30, 5, 255])
        });
        let mut tex = Texture::default();
        tex.load(&src, 1);
        // Texel centres (padded coordinates j + 1) map to their pixels exactly.
        let mut row = vec![0u8; 9 * 3];
        let mut alpha = vec![0u8; 9];
        tex.paste_row(1.0, 3.0, 1.0, 0.0, &mut row, &mut alpha);
        for x in 0..9 {
            assert_eq!(&row[x * 3..x * 3 + 3], &src.get_pixel(x as u32, 2).0[..3]);
        }
        assert!(alpha.iter().all(|&a| a == 255));
    }

    #[test]
    fn box_reduce_sums_alike_in_32_and_64_bits() {
        let src = test_texture();
        for k in [2, 3, 5] {
            let mut narrow = Texture::default();
            narrow.load(&src, k);
            let mut wide = narrow.clone();
            wide.texels.fill([0; 4]);
            let mut acc: Vec<[u64; 4]> = Vec::new();
            wide.reduce(&src, k, &mut acc);
            assert!(narrow.texels == wide.texels, "k = {k}");
            assert!(narrow.texels.iter().any(|t| t[3] > 0), "k = {k}: empty");
        }
        // A 2×2 block of one opaque and three transparent pixels: a quarter of the alpha and
        // of the premultiplied colour.
        let mut px = RgbaImage::new(2, 2);
        px.put_pixel(0, 0, image::Rgba([200, 100, 40, 255]));
        let mut tex = Texture::default();
        tex.load(&px, 2);
        assert_eq!(tex.texels[4], [50, 25, 10, 64]);
    }

    #[test]
    fn div255_in_16_bits_is_exact() {
        for x in 0..=255u32 * 255 {
            assert_eq!(u32::from(div255_u16(x as u16)), div255(x), "x = {x}");
            let d = div255(x) as u16;
            let packed = div255_lanes(lanes([x as u16, 0, x as u16, 255 * 255]));
            assert_eq!(packed, lanes([d, 0, d, 255]));
        }
    }

    #[test]
    fn span_covers_every_inside_pixel() {
        for &(c0, dc, max) in &[
            (-3.7f32, 0.31f32, 40.0f32),
            (55.2, -0.77, 40.0),
            (10.0, 0.0, 40.0),
            (-1.0, 0.0, 40.0),
            (0.0, 1e-7, 3.0),
            (39.999, 2.5, 40.0),
            (20.0, 3e-9, 20.000_002),
            (-0.000_01, 1e-9, 40.0),
            (1234.5, -4.1, 1300.0),
        ] {
            let n = 300;
            let (lo, hi) = span(c0, dc, max, n);
            for i in 0..n {
                let c = c0 + dc * i as f32;
                if c >= 0.0 && c < max {
                    assert!(
                        lo <= i && i < hi,
                        "{c0} {dc} {max}: pixel {i} outside {lo}..{hi}"
                    );
                }
            }
        }
    }
}
