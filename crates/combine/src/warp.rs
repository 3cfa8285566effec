//! Pasting one CDP layer: premultiply (and box-reduce for strong downscales), then one affine
//! inverse-mapping pass with bilinear sampling over the destination bounding box only, composited
//! "over" the canvas. The layer's effective alpha is kept for the visible-area weights.
use image::{RgbImage, RgbaImage};

/// Premultiplied RGBA texels with a one-texel transparent border, so bilinear taps near the edge
/// need no bounds checks.
#[derive(Debug, Default, Clone)]
pub(crate) struct Texture {
    texels: Vec<[u8; 4]>,
    row_acc: Vec<[u64; 4]>,
    /// Width and height of the reduced image, without the border.
    w: u32,
    h: u32,
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
fn div255_u16(x: u16) -> u8 {
    let t = x + 128;
    ((t + (t >> 8)) >> 8) as u8
}

/// Premultiplies one row of RGBA pixels into texels.
fn premultiply_row(row: &[u8], dst: &mut [[u8; 4]]) {
    for (t, p) in dst.iter_mut().zip(row.chunks_exact(4)) {
        let a = u16::from(p[3]);
        *t = [
            div255_u16(u16::from(p[0]) * a),
            div255_u16(u16::from(p[1]) * a),
            div255_u16(u16::from(p[2]) * a),
            p[3],
        ];
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
            return;
        }
        self.reduce(src, k, pw);
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

    fn reduce(&mut self, src: &RgbaImage, k: u32, pw: usize) {
        let (sw, sh) = src.dimensions();
        let area = u64::from(k) * u64::from(k);
        self.row_acc.clear();
        self.row_acc.resize(self.w as usize, [0; 4]);
        for (y, row) in src.as_raw().chunks_exact(sw as usize * 4).enumerate() {
            for (x, p) in row.chunks_exact(4).enumerate() {
                let a = u32::from(p[3]);
                let acc = &mut self.row_acc[x / k as usize];
                acc[0] += u64::from(u32::from(p[0]) * a);
                acc[1] += u64::from(u32::from(p[1]) * a);
                acc[2] += u64::from(u32::from(p[2]) * a);
                acc[3] += u64::from(a * 255);
            }
            let row_in_block = y as u32 % k;
            if row_in_block == k - 1 || y as u32 + 1 == sh {
                let ty = y / k as usize + 1;
                let dst = &mut self.texels[ty * pw + 1..(ty + 1) * pw - 1];
                for (t, acc) in dst.iter_mut().zip(self.row_acc.iter_mut()) {
                    for c in 0..4 {
                        t[c] = div255(((acc[c] + area / 2) / area) as u32) as u8;
                    }
                    *acc = [0; 4];
                }
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
        let (ax, ay) = (fl * cos * inv, sin * inv); // d(sx, sy)/d(canvas x)
        let (bx, by) = (-fl * sin * inv, cos * inv); // d(sx, sy)/d(canvas y)
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

    #[inline]
    fn paste_row(&self, u0: f32, v0: f32, du: f32, dv: f32, row: &mut [u8], alpha: &mut [u8]) {
        let pw = self.w as usize + 2;
        let (umax, vmax) = ((self.w + 1) as f32, (self.h + 1) as f32);
        let t = &self.texels;
        // Only pixels whose texel coordinates can fall inside the texture are visited; the exact
        // test below still decides each one.
        let (lo_u, hi_u) = span(u0, du, umax, alpha.len());
        let (lo_v, hi_v) = span(v0, dv, vmax, alpha.len());
        let (lo, hi) = (lo_u.max(lo_v), hi_u.min(hi_v));
        if lo >= hi {
            return;
        }
        let pixels = row[lo * 3..hi * 3].chunks_exact_mut(3);
        for (i, (px, a_out)) in (lo..hi).zip(pixels.zip(&mut alpha[lo..hi])) {
            let u = u0 + du * i as f32;
            let v = v0 + dv * i as f32;
            // u, v are in padded texel units (texel j's centre at j + 0.5 - 0.5 = j).
            if !(u >= 0.0 && v >= 0.0 && u < umax && v < vmax) {
                continue;
            }
            // Integer part and 8-bit fraction at once (exact: scaling by 256 is exact).
            let (uf, vf) = ((u * 256.0) as usize, (v * 256.0) as usize);
            let idx = (vf >> 8) * pw + (uf >> 8);
            let Some(quad) = t.get(idx..idx + pw + 2) else {
                continue;
            };
            let (p00, p10, p01, p11) = (quad[0], quad[1], quad[pw], quad[pw + 1]);
            if p00[3] | p10[3] | p01[3] | p11[3] == 0 {
                continue;
            }
            let (fu, fv) = ((uf & 255) as u32, (vf & 255) as u32);
            let w11 = fu * fv;
            let w10 = fu * 256 - w11;
            let w01 = fv * 256 - w11;
            let w00 = 65536 - w10 - w01 - w11;
            let mix = |c: usize| {
                (u32::from(p00[c]) * w00
                    + u32::from(p10[c]) * w10
                    + u32::from(p01[c]) * w01
                    + u32::from(p11[c]) * w11
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

    /// The first per-pixel loop (bounds test on every pixel of the box, full bilinear mix
    /// before the alpha test), the reference for [`Texture::paste_row`].
    fn paste_row_reference(
        tex: &Texture,
        (u0, v0, du, dv): (f32, f32, f32, f32),
        row: &mut [u8],
        alpha: &mut [u8],
    ) {
        let pw = tex.w as usize + 2;
        let (umax, vmax) = ((tex.w + 1) as f32, (tex.h + 1) as f32);
        let t = &tex.texels;
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
            let (p00, p10) = (t[idx], t[idx + 1]);
            let (p01, p11) = (t[idx + pw], t[idx + pw + 1]);
            let mix = |c: usize| {
                (u32::from(p00[c]) * w00
                    + u32::from(p10[c]) * w10
                    + u32::from(p01[c]) * w01
                    + u32::from(p11[c]) * w11
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

    #[test]
    fn paste_row_is_bit_identical_to_the_reference() {
        let src = RgbaImage::from_fn(37, 23, |x, y| {
            let a = if (x * 7 + y * 3) % 5 == 0 {
                0
            } else {
                (x * 9 + y * 11) as u8
            };
            image::Rgba([(x * 5) as u8, (y * 9) as u8, 77, a])
        });
        let mut tex = Texture::default();
        tex.load(&src, 1);
        let mut s = 12345u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 20_000) as f32 / 20_000.0
        };
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
            assert_eq!(
                (&r1, &a1),
                (&r2, &a2),
                "case {case}: {u0} {v0} {du} {dv} {n}"
            );
        }
    }

    #[test]
    fn div255_in_16_bits_is_exact() {
        for x in 0..=255u32 * 255 {
            assert_eq!(u32::from(div255_u16(x as u16)), div255(x), "x = {x}");
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
