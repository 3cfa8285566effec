//! Procedural fractal images for DiffuseMix's blend, from iterated function systems (IFS) as
//! FractalDB renders them (Kataoka et al., "Pre-training without Natural Images", ACCV 2020).
//!
//! DiffuseMix (`khawar-islam/diffuseMix`, `augment/utils.py`, `Utils.load_fractal_images`)
//! blends every hybrid image with one of a fixed set of downloaded fractal pictures; we cannot
//! make that download, so fractals are generated here, deterministically from `(seed, index)`:
//! 1. an IFS of `n` affine maps `x ↦ [a b; c d]·x + [e f]` with `n` uniform in
//!    [`FractalParams::maps`] (FractalDB draws 2–8) and every coefficient uniform in [−1, 1];
//!    a map is redrawn until it is contractive (largest singular value < 1, so the attractor
//!    exists); map `i` is chosen with probability ∝ |det Aᵢ| (FractalDB's rule), floored so a
//!    degenerate map still appears;
//! 2. the chaos game: from the origin, [`FractalParams::points`] iterations (the first 20
//!    discarded), each applying a randomly chosen map;
//! 3. rendering: the points' bounding box is scaled into the square image with a 5% margin;
//!    each map has a random colour and a point's colour is the running mean of the colours of
//!    the maps that produced it (so sub-structures are coloured by their map), on black;
//! 4. an IFS whose picture covers less than [`FractalParams::min_fill`] of the image (a
//!    collapsed attractor, FractalDB's filling-rate filter) is rejected and the next one drawn.
//!
//! Randomness: `deda_core::rng_for(seed, Stream::Fractal, &[index])`.
use deda_core::{rng_for, Stream};
use image::{Rgb, RgbImage};
use rand::Rng;

/// How fractals are drawn and rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct FractalParams {
    /// Image side in pixels (DiffuseMix: 256).
    pub size: u32,
    /// Number of affine maps, inclusive range.
    pub maps: (usize, usize),
    /// Chaos-game iterations (FractalDB: 100 000 at 362 px).
    pub points: usize,
    /// Smallest fraction of non-black pixels accepted.
    pub min_fill: f64,
    /// IFS drawn at most before giving up.
    pub max_tries: usize,
}

impl Default for FractalParams {
    fn default() -> Self {
        FractalParams {
            size: 256,
            maps: (2, 4),
            points: 100_000,
            min_fill: 0.05,
            max_tries: 200,
        }
    }
}

/// One affine map of an IFS, with its choice weight and colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineMap {
    /// `[a, b, c, d, e, f]`: `(x, y) ↦ (a·x + b·y + e, c·x + d·y + f)`.
    pub coefficients: [f64; 6],
    /// Choice probability (normalised over the IFS).
    pub probability: f64,
    /// RGB colour in [0, 255].
    pub colour: [f64; 3],
}

impl AffineMap {
    fn apply(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let [a, b, c, d, e, f] = self.coefficients;
        (a * x + b * y + e, c * x + d * y + f)
    }
}

/// The largest singular value of `[a b; c d]`.
fn spectral_norm(a: f64, b: f64, c: f64, d: f64) -> f64 {
    let s = a * a + b * b + c * c + d * d;
    let det = a * d - b * c;
    ((s + (s * s - 4.0 * det * det).max(0.0).sqrt()) / 2.0).sqrt()
}

/// Draws an IFS: `params.maps` maps, each contractive, probabilities ∝ |det|.
pub fn sample_ifs(rng: &mut impl Rng, params: &FractalParams) -> Vec<AffineMap> {
    let (lo, hi) = (
        params.maps.0.max(1),
        params.maps.1.max(params.maps.0.max(1)),
    );
    let n = rng.random_range(lo..=hi);
    let mut maps: Vec<AffineMap> = (0..n)
        .map(|_| {
            let coefficients = loop {
                let c: [f64; 6] = std::array::from_fn(|_| rng.random_range(-1.0..=1.0));
                if spectral_norm(c[0], c[1], c[2], c[3]) < 1.0 {
                    break c;
                }
            };
            let det = (coefficients[0] * coefficients[3] - coefficients[1] * coefficients[2]).abs();
            AffineMap {
                coefficients,
                probability: det.max(0.01),
                colour: std::array::from_fn(|_| rng.random_range(40.0..=255.0)),
            }
        })
        .collect();
    let total: f64 = maps.iter().map(|m| m.probability).sum();
    for m in &mut maps {
        m.probability /= total;
    }
    maps
}

/// Renders an IFS by the chaos game (see the module doc).
pub fn render(maps: &[AffineMap], params: &FractalParams, rng: &mut impl Rng) -> RgbImage {
    let size = params.size.max(1);
    let mut img = RgbImage::new(size, size);
    if maps.is_empty() {
        return img;
    }
    let mut points = Vec::with_capacity(params.points);
    let (mut p, mut colour) = ((0.0f64, 0.0f64), [0.0f64; 3]);
    for k in 0..params.points + 20 {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let map = maps
            .iter()
            .find(|m| {
                acc += m.probability;
                u < acc
            })
            .unwrap_or(&maps[maps.len() - 1]);
        p = map.apply(p);
        colour = std::array::from_fn(|c| 0.5 * (colour[c] + map.colour[c]));
        if k >= 20 && p.0.is_finite() && p.1.is_finite() {
            points.push((p, colour));
        }
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &((x, y), _) in &points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let span = (x1 - x0).max(y1 - y0).max(1e-12);
    let side = f64::from(size);
    let scale = 0.9 * (side - 1.0) / span;
    let (ox, oy) = (
        0.5 * (side - 1.0 - scale * (x1 - x0)),
        0.5 * (side - 1.0 - scale * (y1 - y0)),
    );
    for ((x, y), c) in points {
        let px = (ox + scale * (x - x0)).round().clamp(0.0, side - 1.0) as u32;
        let py = (oy + scale * (y1 - y)).round().clamp(0.0, side - 1.0) as u32;
        img.put_pixel(px, py, Rgb(c.map(|v| v.clamp(1.0, 255.0) as u8)));
    }
    img
}

/// The fraction of pixels that are not black.
pub fn fill_rate(img: &RgbImage) -> f64 {
    let lit = img.pixels().filter(|p| p.0 != [0, 0, 0]).count();
    lit as f64 / (f64::from(img.width()) * f64::from(img.height())).max(1.0)
}

/// Fractal `index` of the set of `seed`: the first IFS drawn from
/// `rng_for(seed, Stream::Fractal, [index])` whose picture fills at least `min_fill`.
///
/// # Errors
/// A message if none of `max_tries` IFS fills enough.
pub fn fractal_image(seed: u64, index: u64, params: &FractalParams) -> Result<RgbImage, String> {
    let mut rng = rng_for(seed, Stream::Fractal, &[index]);
    let mut best = 0.0f64;
    for _ in 0..params.max_tries.max(1) {
        let maps = sample_ifs(&mut rng, params);
        let img = render(&maps, params, &mut rng);
        let fill = fill_rate(&img);
        if fill >= params.min_fill {
            return Ok(img);
        }
        best = best.max(fill);
    }
    Err(format!(
        "fractal {index} (seed {seed}): no IFS of {} tries filled {} of the image (best {best:.3})",
        params.max_tries, params.min_fill
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FractalParams {
        FractalParams {
            size: 64,
            points: 20_000,
            ..FractalParams::default()
        }
    }

    #[test]
    fn fractals_are_seeded_filled_and_distinct() {
        let p = small();
        let a = fractal_image(1, 0, &p).unwrap();
        assert_eq!(a.dimensions(), (64, 64));
        assert_eq!(a, fractal_image(1, 0, &p).unwrap(), "same seed and index");
        assert_ne!(a, fractal_image(1, 1, &p).unwrap(), "another index");
        assert_ne!(a, fractal_image(2, 0, &p).unwrap(), "another seed");
        for i in 0..6 {
            let img = fractal_image(1, i, &p).unwrap();
            let fill = fill_rate(&img);
            assert!((p.min_fill..1.0).contains(&fill), "{i}: {fill}");
        }
    }

    #[test]
    fn maps_are_contractive_with_normalised_probabilities() {
        let mut rng = rng_for(3, Stream::Fractal, &[0]);
        for _ in 0..50 {
            let maps = sample_ifs(&mut rng, &FractalParams::default());
            assert!((2..=4).contains(&maps.len()));
            let total: f64 = maps.iter().map(|m| m.probability).sum();
            assert!((total - 1.0).abs() < 1e-9);
            for m in &maps {
                let [a, b, c, d, ..] = m.coefficients;
                assert!(spectral_norm(a, b, c, d) < 1.0);
            }
        }
        assert!((spectral_norm(2.0, 0.0, 0.0, 0.5) - 2.0).abs() < 1e-12);
        assert!((spectral_norm(0.0, 1.0, -1.0, 0.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_impossible_fill_is_an_error_naming_the_fractal() {
        let p = FractalParams {
            min_fill: 1.1,
            max_tries: 2,
            ..small()
        };
        let e = fractal_image(1, 7, &p).unwrap_err();
        assert!(e.contains("fractal 7"), "{e}");
    }
}
