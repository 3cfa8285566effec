//! Producing one sample: the combination decision, decoding or composing, then the classic
//! transform path.
use crate::batch::EpochStats;
use crate::config::LoaderConfig;
use crate::error::SampleError;
use crate::parts::PartStore;
use crate::rand_augment::{apply_ops, sample_ops};
use crate::source::SampleSource;
use crate::transform::{apply_crop, sample_crop, Normaliser};
use deda_combine::{compose, CombineSampler, Compositor, Decision, RealReason, Resizer};
use deda_core::{rng_for, ClassId, Stream};
use image::{RgbImage, RgbaImage};
use std::sync::Arc;

/// A soft label as (class, weight) pairs.
type Label = Vec<(ClassId, f32)>;

/// What the loader needs to combine: the parts, the sampler and each sample's CDP.
pub struct Combiner {
    /// Decodes parts.
    pub store: Arc<dyn PartStore>,
    /// Draws the combinations.
    pub sampler: CombineSampler,
    /// For each sample of the source, its CDP's index in the sampler's pool.
    pub cdp_of: Vec<Option<usize>>,
}

/// Per-thread scratch space.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) resizer: Resizer,
    pub(crate) compositor: Compositor,
    /// The last CIP's pixels, whose buffer the next CIP is read into.
    pub(crate) cip: RgbImage,
}

/// Everything a worker reads.
pub(crate) struct Context {
    pub(crate) config: LoaderConfig,
    pub(crate) source: Arc<dyn SampleSource>,
    pub(crate) combiner: Option<Arc<Combiner>>,
    /// The generative peers' generated images and rule.
    pub(crate) peers: Option<Arc<crate::peers::Peers>>,
    pub(crate) normaliser: Normaliser,
}

/// A produced sample's label and whether it is a combination.
pub(crate) struct Produced {
    pub(crate) target: Vec<(ClassId, f32)>,
    pub(crate) combined: bool,
    /// Whether a generative peer replaced it by a generated image.
    pub(crate) generated: bool,
}

impl Context {
    /// Writes sample `i` of `epoch` into `out` (3·crop² floats).
    pub(crate) fn produce(
        &self,
        i: usize,
        epoch: u64,
        scratch: &mut Scratch,
        stats: &mut EpochStats,
        out: &mut [f32],
    ) -> Result<Produced, SampleError> {
        let (crop, flip, produced) = self.produce_crop(i, epoch, scratch, stats)?;
        self.normaliser.write_chw(&crop, flip, out);
        Ok(produced)
    }

    /// Sample `i` of `epoch` as its `crop`² RGB crop before normalisation, with whether it is
    /// still to be mirrored (the mirror is done while writing CHW, saving a copy).
    pub(crate) fn produce_crop(
        &self,
        i: usize,
        epoch: u64,
        scratch: &mut Scratch,
        stats: &mut EpochStats,
    ) -> Result<(RgbImage, bool, Produced), SampleError> {
        let composed = self.maybe_combine(i, epoch, scratch, stats)?;
        let load_real = || {
            let path = self.source.path(i);
            deda_core::image_io::load_rgb(path).map_err(|source| SampleError::Image {
                path: path.to_path_buf(),
                source,
            })
        };
        let generated = match (&composed, &self.peers) {
            (None, Some(peers)) => {
                peers.produce(i, epoch, self.config.seed, self.source.as_ref(), &load_real)?
            }
            _ => None,
        };
        let (img, target, combined, generated) = match (composed, generated) {
            (Some((img, target)), _) => (img, target, true, false),
            (None, Some((img, target))) => (img, target, false, true),
            (None, None) => (load_real()?, self.source.target(i).to_vec(), false, false),
        };
        let produced = Produced {
            target,
            combined,
            generated,
        };
        let mut rng = rng_for(self.config.seed, Stream::Augment, &[epoch, i as u64]);
        let crop = sample_crop(&self.config, img.width(), img.height(), &mut rng);
        let cropped = apply_crop(&img, &crop, self.config.crop, &mut scratch.resizer);
        match &self.config.rand_augment {
            None => Ok((cropped, crop.flip, produced)),
            Some(ra) => {
                let flipped = if crop.flip {
                    image::imageops::flip_horizontal(&cropped)
                } else {
                    cropped
                };
                let mut rng = rng_for(self.config.seed, Stream::Augment, &[epoch, i as u64, 1]);
                let ops = sample_ops(ra, flipped.height(), flipped.width(), &mut rng);
                Ok((apply_ops(&flipped, &ops), false, produced))
            }
        }
    }

    fn maybe_combine(
        &self,
        i: usize,
        epoch: u64,
        scratch: &mut Scratch,
        stats: &mut EpochStats,
    ) -> Result<Option<(RgbImage, Label)>, SampleError> {
        let Some(comb) = &self.combiner else {
            return Ok(None);
        };
        let mut rng = rng_for(self.config.seed, Stream::Combine, &[epoch, i as u64]);
        let own = comb.cdp_of.get(i).copied().flatten();
        let c = match comb.sampler.sample(own, &mut rng) {
            Decision::Real(RealReason::NotDrawn) => return Ok(None),
            Decision::Real(RealReason::NoCdp) => {
                stats.no_cdp += 1;
                return Ok(None);
            }
            Decision::Real(RealReason::NoCip) => {
                stats.no_cip += 1;
                return Ok(None);
            }
            Decision::Combine(c) => c,
        };
        let side = self.config.resize_short;
        let composite = compose_parts_reusing(
            comb.store.as_ref(),
            &c.params,
            (side, side),
            &mut scratch.compositor,
            &mut scratch.cip,
        )?;
        stats.cip_fallback += usize::from(c.cip_fallback);
        stats.home_unavailable += usize::from(c.home_unavailable);
        stats.mix_unavailable += usize::from(c.mix_unavailable);
        stats.mixed += usize::from(c.params.layers.len() > 1);
        stats.synthetic_layers += c.params.layers.iter().filter(|l| l.synthetic).count();
        stats.label_fallback += usize::from(composite.label_fallback);
        Ok(Some((composite.image, composite.weights)))
    }
}

/// Decodes the parts of `params` from `store` and composes them on a `w × h` canvas.
///
/// # Errors
/// The first part that cannot be loaded, or the composition's error.
pub fn compose_parts(
    store: &dyn PartStore,
    params: &deda_combine::CombineParams,
    w: u32,
    h: u32,
    compositor: &mut Compositor,
) -> Result<deda_combine::Composite, SampleError> {
    compose_parts_reusing(store, params, (w, h), compositor, &mut RgbImage::default())
}

/// As [`compose_parts`], reading the CIP into `cip`'s buffer and leaving it there for the next
/// call.
fn compose_parts_reusing(
    store: &dyn PartStore,
    params: &deda_combine::CombineParams,
    (w, h): (u32, u32),
    compositor: &mut Compositor,
    cip: &mut RgbImage,
) -> Result<deda_combine::Composite, SampleError> {
    *cip = store.load_cip_reusing(&params.cip, std::mem::take(cip))?;
    let cdps: Vec<RgbaImage> = params
        .layers
        .iter()
        .map(|l| store.load_cdp(&l.cdp))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&RgbaImage> = cdps.iter().collect();
    Ok(compose(cip, &refs, params, w, h, compositor)?)
}
