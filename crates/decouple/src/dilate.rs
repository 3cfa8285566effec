//! Grayscale dilation with a square window: a separable max filter.
//!
//! Each 1-D pass uses the van Herk / Gil-Werman algorithm (block prefix and suffix maxima),
//! so the cost is about three comparisons per pixel whatever the radius. Outside the image
//! counts as 0, so the filter only ever grows bright regions.
use image::GrayImage;

/// Dilates `mask` with a `(2·radius + 1)²` square: every output pixel is the maximum of its
/// window. `radius == 0` returns a copy.
pub fn dilate(mask: &GrayImage, radius: u32) -> GrayImage {
    let (w, h) = mask.dimensions();
    if radius == 0 || w == 0 || h == 0 {
        return mask.clone();
    }
    let rows = max_filter_rows(mask.as_raw(), w as usize, h as usize, radius as usize);
    let t = transpose(&rows, w as usize, h as usize);
    let cols = max_filter_rows(&t, h as usize, w as usize, radius as usize);
    let out = transpose(&cols, h as usize, w as usize);
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| mask.clone())
}

/// Applies the 1-D max filter to each of the `height` rows of `width` values.
fn max_filter_rows(data: &[u8], width: usize, height: usize, radius: usize) -> Vec<u8> {
    let mut out = vec![0u8; width * height];
    let mut scratch = Scratch::new(width, radius);
    for (src, dst) in data
        .chunks_exact(width)
        .zip(out.chunks_exact_mut(width))
        .take(height)
    {
        scratch.filter(src, dst);
    }
    out
}

/// Reusable buffers of the van Herk / Gil-Werman 1-D filter.
struct Scratch {
    radius: usize,
    window: usize,
    padded: Vec<u8>,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl Scratch {
    fn new(width: usize, radius: usize) -> Self {
        let window = 2 * radius + 1;
        // room for the zero padding on both sides, rounded up to whole blocks
        let len = (width + 2 * radius).div_ceil(window) * window;
        Scratch {
            radius,
            window,
            padded: vec![0; len],
            prefix: vec![0; len],
            suffix: vec![0; len],
        }
    }

    /// `dst[i] = max(src[i − r ..= i + r])`, outside values being 0.
    fn filter(&mut self, src: &[u8], dst: &mut [u8]) {
        let (r, k) = (self.radius, self.window);
        self.padded.iter_mut().for_each(|v| *v = 0);
        self.padded[r..r + src.len()].copy_from_slice(src);
        for (block, (pre, suf)) in self.padded.chunks_exact(k).zip(
            self.prefix
                .chunks_exact_mut(k)
                .zip(self.suffix.chunks_exact_mut(k)),
        ) {
            let mut m = 0;
            for (p, &v) in pre.iter_mut().zip(block) {
                m = m.max(v);
                *p = m;
            }
            m = 0;
            for (s, &v) in suf.iter_mut().zip(block).rev() {
                m = m.max(v);
                *s = m;
            }
        }
        // the window of output i is padded[i ..= i + 2r] = padded[i .. i + k]
        for (i, d) in dst.iter_mut().enumerate() {
            *d = self.suffix[i].max(self.prefix[i + k - 1]);
        }
    }
}

/// Transposes a `width × height` row-major buffer into `height × width`.
fn transpose(data: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut out = vec![0u8; width * height];
    for (y, row) in data.chunks_exact(width).enumerate().take(height) {
        for (x, &v) in row.iter().enumerate() {
            out[x * height + y] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// Direct definition, for comparison.
    fn dilate_naive(mask: &GrayImage, r: u32) -> GrayImage {
        let (w, h) = mask.dimensions();
        GrayImage::from_fn(w, h, |x, y| {
            let mut m = 0;
            for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                    m = m.max(mask.get_pixel(xx, yy).0[0]);
                }
            }
            Luma([m])
        })
    }

    fn pseudo_random_mask(w: u32, h: u32, seed: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let v = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed)
                .wrapping_mul(2_654_435_761);
            Luma([if v.is_multiple_of(17) {
                (v >> 24) as u8
            } else {
                0
            }])
        })
    }

    #[test]
    fn matches_the_naive_max_filter_for_many_sizes_and_radii() {
        for (w, h) in [(1, 1), (1, 7), (9, 1), (13, 11), (32, 5), (40, 40)] {
            for r in [1, 2, 3, 6, 25] {
                let m = pseudo_random_mask(w, h, w * 31 + h + r);
                assert_eq!(dilate(&m, r), dilate_naive(&m, r), "{w}x{h} r={r}");
            }
        }
    }

    #[test]
    fn single_pixel_grows_into_a_square() {
        let mut m = GrayImage::new(11, 11);
        m.put_pixel(5, 5, Luma([200]));
        let d = dilate(&m, 2);
        let on: Vec<(u32, u32)> = d
            .enumerate_pixels()
            .filter(|p| p.2 .0[0] == 200)
            .map(|p| (p.0, p.1))
            .collect();
        assert_eq!(on.len(), 25);
        assert!(on
            .iter()
            .all(|&(x, y)| (3..=7).contains(&x) && (3..=7).contains(&y)));
    }

    #[test]
    fn radius_zero_is_the_identity() {
        let m = pseudo_random_mask(8, 6, 1);
        assert_eq!(dilate(&m, 0), m);
    }
}
