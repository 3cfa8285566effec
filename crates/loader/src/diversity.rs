//! The PSNR diversity measure of the paper's Fig. 5b, applied to what De-DA feeds the network:
//! how far its augmentations are from the real samples they were made from (lower PSNR = more
//! diverse). Two measurements:
//! - **edits**: each real CDP against each of its synthetic edits, both flattened over gray at
//!   the real CDP's size (the diversity the generative model adds);
//! - **combinations**: each real training image, resized to cover the square canvas, against
//!   De-DA combinations drawn for it (`p_aug` forced to 1), the diversity of the whole method.
use crate::error::{PartError, SampleError};
use crate::parts::PartStore;
use crate::sample::{compose_parts, Combiner};
use crate::source::SampleSource;
use deda_combine::{Compositor, Decision, PartPool, Resizer};
use deda_core::psnr::{over_gray, psnr_rgb};
use deda_core::{rng_for, Stream};
use image::RgbImage;
use serde::Serialize;

/// Summary of a set of PSNR values, in dB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsnrSummary {
    /// Pairs compared.
    pub pairs: usize,
    /// Pairs with identical pixels (infinite PSNR; left out of the statistics below).
    pub identical: usize,
    /// Mean over the finite values.
    pub mean_db: Option<f64>,
    /// Median over the finite values.
    pub median_db: Option<f64>,
    /// Sample standard deviation over the finite values.
    pub std_db: Option<f64>,
}

/// Summarises `values` (infinite ones are counted as identical).
pub fn summarise(values: &[f64]) -> PsnrSummary {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f64::total_cmp);
    let n = finite.len();
    let mean = (n > 0).then(|| finite.iter().sum::<f64>() / n as f64);
    let median = (n > 0).then(|| {
        if n % 2 == 1 {
            finite[n / 2]
        } else {
            (finite[n / 2 - 1] + finite[n / 2]) / 2.0
        }
    });
    let std = mean
        .filter(|_| n > 1)
        .map(|m| (finite.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    PsnrSummary {
        pairs: values.len(),
        identical: values.len() - n,
        mean_db: mean,
        median_db: median,
        std_db: std,
    }
}

/// PSNR of every (real CDP, synthetic edit) pair of `pool`; an edit of another size is
/// resized to the real CDP's size after flattening.
///
/// # Errors
/// The first part that cannot be decoded.
pub fn edit_psnrs(store: &dyn PartStore, pool: &PartPool) -> Result<Vec<f64>, PartError> {
    let mut resizer = Resizer::new();
    let mut out = Vec::new();
    for cdp in pool.cdps().iter().filter(|c| !c.synthetic.is_empty()) {
        let real = over_gray(&store.load_cdp(&cdp.id)?);
        for syn in &cdp.synthetic {
            let edit = over_gray(&store.load_cdp(syn)?);
            let edit = if edit.dimensions() == real.dimensions() {
                edit
            } else {
                let mut sized = RgbImage::new(real.width(), real.height());
                let (w, h) = (f64::from(edit.width()), f64::from(edit.height()));
                resizer.resize_region(&edit, (0.0, 0.0, w, h), &mut sized);
                sized
            };
            out.extend(psnr_rgb(&real, &edit));
        }
    }
    Ok(out)
}

/// One real sample on the canvas and the combinations drawn for it.
#[derive(Debug, Clone)]
pub struct SampleCombinations {
    /// The real image, resized to cover the canvas.
    pub real: RgbImage,
    /// Each combination and its PSNR against `real`, in dB.
    pub combos: Vec<(RgbImage, f64)>,
}

/// Sample `i` of `source` resized to cover a `size × size` canvas, and `draws` combinations
/// drawn for it with their PSNR against it (None if the sample has no CDP). Draw `d` uses
/// `rng_for(seed, Stream::Combine, [d, i])`; build the combiner with `p_aug = 1` so that every
/// draw combines.
///
/// # Errors
/// The image or a part cannot be decoded, or the composition fails.
pub fn sample_combinations(
    source: &dyn SampleSource,
    combiner: &Combiner,
    i: usize,
    (size, draws, seed): (u32, usize, u64),
    scratch: &mut (Resizer, Compositor),
) -> Result<Option<SampleCombinations>, SampleError> {
    let Some(own) = combiner.cdp_of.get(i).copied().flatten() else {
        return Ok(None);
    };
    let path = source.path(i);
    let img = deda_core::image_io::load_rgb(path).map_err(|e| SampleError::Image {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut real = RgbImage::new(size, size);
    scratch.0.resize_cover(&img, &mut real);
    let mut combos = Vec::with_capacity(draws);
    for d in 0..draws {
        let mut rng = rng_for(seed, Stream::Combine, &[d as u64, i as u64]);
        if let Decision::Combine(c) = combiner.sampler.sample(Some(own), &mut rng) {
            let comp = compose_parts(
                combiner.store.as_ref(),
                &c.params,
                size,
                size,
                &mut scratch.1,
            )?;
            if let Some(p) = psnr_rgb(&real, &comp.image) {
                combos.push((comp.image, p));
            }
        }
    }
    Ok(Some(SampleCombinations { real, combos }))
}

/// PSNR of each sample of `source` that has a CDP against `draws` combinations drawn for it,
/// see [`sample_combinations`].
///
/// # Errors
/// The first image or part that cannot be decoded, or a composition error.
pub fn combination_psnrs(
    source: &dyn SampleSource,
    combiner: &Combiner,
    size: u32,
    draws: usize,
    seed: u64,
) -> Result<Vec<f64>, SampleError> {
    let mut scratch = (Resizer::new(), Compositor::new());
    let mut out = Vec::new();
    for i in 0..source.len() {
        if let Some(s) =
            sample_combinations(source, combiner, i, (size, draws, seed), &mut scratch)?
        {
            out.extend(s.combos.into_iter().map(|(_, p)| p));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_separates_identical_pairs() {
        let s = summarise(&[10.0, f64::INFINITY, 20.0, 30.0]);
        assert_eq!((s.pairs, s.identical), (4, 1));
        assert_eq!((s.mean_db, s.median_db), (Some(20.0), Some(20.0)));
        assert_eq!(s.std_db, Some(10.0));
        let e = summarise(&[f64::INFINITY]);
        assert_eq!((e.mean_db, e.median_db, e.std_db), (None, None, None));
    }
}
