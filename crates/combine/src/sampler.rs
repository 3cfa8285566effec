//! Drawing the random choices of one combination: the only place this crate uses randomness.
//!
//! # Order of draws
//! [`CombineSampler::sample`] draws exactly [`DRAWS_PER_SAMPLE`] values `u[0..18]`, each
//! `rng.random::<f64>()` (uniform in `[0, 1)`), all up front and always in this order, whatever
//! the branches taken, so a change to one choice never shifts the others:
//!
//! | index | use |
//! |---|---|
//! | 0 | `p_aug`: combine if `u < p_aug`; then, for a multi-label image with several CDPs, which of them is the sample's own: `u / p_aug` (uniform given the draw) |
//! | 1 | which CIP among the allowed ones (`cip_source`: other classes, all but the own, or the own) |
//! | 2 | `p_mix`: add a second CDP if `u < p_mix` |
//! | 3 | which second CDP among the real CDPs of other classes (multi-label pools: of classes the CIP's image does not hold either) |
//! | 4–10 | layer 1 (the sample's own CDP): see below |
//! | 11–17 | layer 2 (the second CDP): see below |
//!
//! Per layer, at offsets 0–6: `p_syn` (use a synthetic edit if `u < p_syn` and the CDP has
//! any), which synthetic edit, scale, centre x, centre y, `p_flip`, rotation.
//! A choice among `n` items is `min(floor(u·n), n − 1)`; a range `[a, b]` maps to `a + u·(b − a)`;
//! the rotation is `(2u − 1)·max_rotation_deg`. With `placement = "original"` each layer takes
//! its CDP's [`crate::pool::Home`] instead of the scale, centre, flip and rotation draws (which
//! are still drawn, keeping the order).
//!
//! # Multi-label pools
//! In a pool made with [`PartPool::with_image_labels`] (Pascal VOC: one CDP per labelled class
//! of an image, CIPs knowing all their image's labels), "from another class" is generalised to
//! label sets: the CIP is drawn among the images that **do not contain** the pasted CDP's
//! class, and the second CDP among the classes that are neither the first CDP's nor any of the
//! CIP's image. So no pasted object ever lands on a backdrop whose (filled-in) scene held an
//! object of its own class: the combination's label (area-weighted over the pasted CDPs) then
//! never names a class whose context the backdrop already carries, which is what the
//! single-label rule achieves for one class per image. A backdrop may still hold other labelled
//! classes' context (their objects are cut out of every CIP). Single-label pools draw exactly
//! as before.
use crate::config::{CdpPlacement, CipSource, CombineConfig};
use crate::error::ConfigErrors;
use crate::params::{CombineParams, LayerParams};
use crate::pool::{CdpEntry, CipEntry, PartPool};
use rand::Rng;

/// Number of uniform values drawn per sample (see the module docs for their order).
pub const DRAWS_PER_SAMPLE: usize = 18;
const LAYER_DRAWS: usize = 7;

/// Why a sample stays real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RealReason {
    /// The `p_aug` draw kept the real image.
    NotDrawn,
    /// The sample was drawn for combination but has no CDP in the bank.
    NoCdp,
    /// The sample was drawn for combination but the bank holds no CIP at all.
    NoCip,
}

/// A combination to compose, with notes on fallbacks taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Combination {
    /// What to compose.
    pub params: CombineParams,
    /// No CIP allowed by `cip_source` exists (no other class has one, no other CIP at all, or
    /// the sample's own CIP is not in the bank), so the CIP was drawn from all CIPs.
    pub cip_fallback: bool,
    /// `placement = "original"` but a layer's CDP has no known home, so that layer was placed
    /// randomly.
    pub home_unavailable: bool,
    /// Mixing was drawn but no other class has a CDP, so only one layer is pasted.
    pub mix_unavailable: bool,
}

/// The outcome of [`CombineSampler::sample`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Keep the real image.
    Real(RealReason),
    /// Replace it by this combination.
    Combine(Combination),
}

/// Draws combinations from a [`PartPool`] according to a [`CombineConfig`].
#[derive(Debug, Clone)]
pub struct CombineSampler {
    config: CombineConfig,
    pool: PartPool,
}

fn pick(u: f64, n: usize) -> usize {
    ((u * n as f64) as usize).min(n.saturating_sub(1))
}

fn lerp(u: f64, [a, b]: [f32; 2]) -> f32 {
    a + (u as f32) * (b - a)
}

impl CombineSampler {
    /// A sampler over `pool`.
    ///
    /// # Errors
    /// The config's problems, if any (see [`CombineConfig::validate`]).
    pub fn new(config: CombineConfig, pool: PartPool) -> Result<Self, ConfigErrors> {
        config.validate()?;
        Ok(CombineSampler { config, pool })
    }

    /// The pool sampled from.
    pub fn pool(&self) -> &PartPool {
        &self.pool
    }

    /// The config in use.
    pub fn config(&self) -> &CombineConfig {
        &self.config
    }

    /// Decides what to do with one sample whose own CDP is `own_cdp` (an index into
    /// [`PartPool::cdps`], `None` if it has none). Draws as documented in the module docs.
    pub fn sample(&self, own_cdp: Option<usize>, rng: &mut impl Rng) -> Decision {
        let u: [f64; DRAWS_PER_SAMPLE] = std::array::from_fn(|_| rng.random::<f64>());
        if u[0] >= self.config.p_aug {
            return Decision::Real(RealReason::NotDrawn);
        }
        // A multi-label image has one CDP per labelled class: u[0] / p_aug picks which.
        let own_cdp = own_cdp.map(|i| match self.pool.cdps_of_image_of(i) {
            [] => i,
            group => group[pick(u[0] / self.config.p_aug, group.len())],
        });
        let Some(own) = own_cdp.and_then(|i| self.pool.cdps().get(i)) else {
            return Decision::Real(RealReason::NoCdp);
        };
        let n_cips = self.pool.cips().len();
        if n_cips == 0 {
            return Decision::Real(RealReason::NoCip);
        }
        let (cip_index, cip, cip_fallback) = match self.allowed_cip(own, u[1]) {
            Some((i, c)) => (i, c, false),
            None => {
                let i = pick(u[1], n_cips);
                match self.pool.cips().get(i) {
                    Some(c) => (i, c, true),
                    None => return Decision::Real(RealReason::NoCip),
                }
            }
        };
        let mut home_unavailable = false;
        let mut layers = vec![self.layer(own, &u[4..4 + LAYER_DRAWS], &mut home_unavailable)];
        let mut mix_unavailable = false;
        if u[2] < self.config.p_mix {
            let (n, partner) = if self.pool.is_multi_label() {
                let mut excluded = self.pool.classes_of_cip(cip_index).to_vec();
                excluded.push(own.class);
                let n = self.pool.count_cdps_outside(&excluded);
                (n, self.pool.cdp_outside(&excluded, pick(u[3], n)))
            } else {
                let n = self.pool.count_cdps_not_of(own.class);
                (n, self.pool.cdp_not_of(own.class, pick(u[3], n)))
            };
            match partner {
                Some(partner) if n > 0 => layers.push(self.layer(
                    partner,
                    &u[11..11 + LAYER_DRAWS],
                    &mut home_unavailable,
                )),
                _ => mix_unavailable = true,
            }
        }
        Decision::Combine(Combination {
            params: CombineParams {
                cip: cip.id.clone(),
                layers,
            },
            cip_fallback,
            home_unavailable,
            mix_unavailable,
        })
    }

    /// The CIP that `cip_source` allows for a sample whose CDP is `own`, chosen by `u`; None
    /// when that set is empty.
    /// (In a multi-label pool "other classes" means images without `own`'s class.) Returns the
    /// CIP's index with it.
    fn allowed_cip(&self, own: &CdpEntry, u: f64) -> Option<(usize, &CipEntry)> {
        let pool = &self.pool;
        match self.config.cip_source {
            CipSource::OtherClass => {
                let n = pool.count_cips_without(own.class);
                (n > 0).then(|| pool.cip_without(own.class, pick(u, n)))?
            }
            CipSource::Any => {
                let n = pool.count_cips_except(own.own_cip);
                let k = pick(u, n);
                let i = match own.own_cip {
                    Some(o) if k >= o => k + 1,
                    _ => k,
                };
                (n > 0).then(|| pool.cips().get(i).map(|c| (i, c)))?
            }
            CipSource::Own => own.own_cip.and_then(|i| pool.cips().get(i).map(|c| (i, c))),
        }
    }

    fn layer(&self, cdp: &CdpEntry, u: &[f64], home_unavailable: &mut bool) -> LayerParams {
        let c = &self.config;
        let synthetic = u[0] < c.p_syn && !cdp.synthetic.is_empty();
        let id = if synthetic {
            cdp.synthetic[pick(u[1], cdp.synthetic.len())].clone()
        } else {
            cdp.id.clone()
        };
        let random = LayerParams {
            cdp: id,
            class: cdp.class,
            synthetic,
            scale: lerp(u[2], c.scale_range),
            center: (lerp(u[3], c.center_range), lerp(u[4], c.center_range)),
            flip: u[5] < c.p_flip,
            rotation_deg: (2.0 * u[6] as f32 - 1.0) * c.max_rotation_deg,
        };
        match (c.placement, cdp.home) {
            (CdpPlacement::Random, _) => random,
            (CdpPlacement::Original, Some(home)) => LayerParams {
                scale: home.scale,
                center: home.center,
                flip: false,
                rotation_deg: 0.0,
                ..random
            },
            (CdpPlacement::Original, None) => {
                *home_unavailable = true;
                random
            }
        }
    }
}
