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

impl Texture {
    /// Loads `src` premultiplied, box-reduced by the integer factor `k` (1 = as is); texels
    /// beyond the image count as transparent.
    pub(crate) fn load(&mut self, src: &RgbaImage, k: u32) {
        let (sw, sh) = src.dimensions();
        let (w, h) = (sw.div_ceil(k), sh.div_ceil(k));
        let pw = w as usize + 2;
        self.w = w;
        self.h = h;
        self.texels.clear();
        self.texels.resize(pw * (h as usize + 2), [0; 4]);
        if k == 1 {
            for (y, row) in src.as_raw().chunks_exact(sw as usize * 4).enumerate() {
                let dst = &mut self.texels[(y + 1) * pw + 1..(y + 2) * pw - 1];
                for (t, p) in dst.iter_mut().zip(row.chunks_exact(4)) {
                    let a = u32::from(p[3]);
                    *t = [
                        div255(u32::from(p[0]) * a) as u8,
                        div255(u32::from(p[1]) * a) as u8,
                        div255(u32::from(p[2]) * a) as u8,
                        p[3],
                    ];
                }
            }
            return;
        }
        self.reduce(src, k, pw);
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
        for (i, (px, a_out)) in row.chunks_exact_mut(3).zip(alpha.iter_mut()).enumerate() {
            let u = u0 + du * i as f32;
            let v = v0 + dv * i as f32;
            // u, v are in padded texel units (texel j's centre at j + 0.5 - 0.5 = j).
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
}
