//! The generative peers in the loader: a sample may be replaced by a generated whole image of
//! the bank (kind `gen`) following its method's rule ([`deda_combine::peers`]).
//!
//! [`Peers`] holds the run's pool of generated images: only images of the run's own training
//! images (after k-shot; `deda-train` selects them and applies the CLIP filter before), each
//! with its real image's class, its target class and strength. Per sample of an epoch the rule
//! draws from `rng_for(seed, Stream::Combine, [epoch, sample])` (the stream De-DA's combiner
//! uses; the two are never on together):
//! - [`PeerRule::OwnImage`] (DA-Fusion, Real-Guidance): with probability `p`, one of the
//!   sample's **own** generated images, uniformly; the sample's label;
//! - [`PeerRule::DiffMix`]: with probability `p`, **any** image of the pool, uniformly, with the
//!   soft label `c·((1 − s^γ)·onehot(source) + s^γ·onehot(target))` (`c` = `soft_scaler`, 1 in
//!   the paper, 0.9 in the reference code's data sets);
//! - [`PeerRule::DiffuseMix`]: with probability `p`, one of the sample's own generated images,
//!   joined to the real image over a random half with a 20-pixel ramp and blended with a
//!   procedural fractal at α (both resized to `side`² first, as the reference does); the
//!   sample's label. The join direction and the fractal are drawn per generated image
//!   (`rng_for(seed, Stream::Fractal, [u64::MAX, image])`), so each generated image has one
//!   hybrid, as the reference's offline hybrids; the fractals are
//!   [`deda_combine::peers::fractal::fractal_image`] of the run's seed.
//!
//! A sample without generated images (a class the filter emptied) always stays real.
use crate::error::SampleError;
use crate::source::SampleSource;
use deda_bank::PartBank;
use deda_combine::peers::{self, diff_mix, diffusemix, PeerChoice};
use deda_core::{rng_for, ClassId, PartId, Stream};
use image::RgbImage;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;

/// A soft label as (class, weight) pairs.
type Label = Vec<(ClassId, f32)>;

/// How a peer uses its generated images.
#[derive(Debug, Clone)]
pub enum PeerRule {
    /// DA-Fusion and Real-Guidance: one of the sample's own images with probability `p`.
    OwnImage {
        /// Replacement probability.
        p: f64,
    },
    /// Diff-Mix: any image of the pool with probability `p`, soft label.
    DiffMix {
        /// Replacement probability.
        p: f64,
        /// The strength exponent γ.
        gamma: f64,
        /// The soft label's total weight (`soft_scaler`).
        soft_scaler: f64,
    },
    /// DiffuseMix: one of the sample's own images with probability `p`, as a hybrid blended
    /// with a fractal.
    DiffuseMix {
        /// Replacement probability.
        p: f64,
        /// Side both images are resized to before the join.
        side: u32,
        /// Fractal blend weight α.
        alpha: f64,
        /// The fractal images (`side`²).
        fractals: Vec<RgbImage>,
    },
}

impl PeerRule {
    /// The replacement probability.
    pub fn probability(&self) -> f64 {
        match self {
            PeerRule::OwnImage { p }
            | PeerRule::DiffMix { p, .. }
            | PeerRule::DiffuseMix { p, .. } => *p,
        }
    }
}

/// One generated image of the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerImage {
    /// Its part id (kind `gen`).
    pub id: PartId,
    /// The sample id of the real image it was made from.
    pub source_image: String,
    /// The real image's class.
    pub source_class: ClassId,
    /// The class it was generated towards.
    pub target_class: ClassId,
    /// img2img strength (0 when the method has none).
    pub strength: f32,
}

/// The run's generated images and the rule that uses them.
pub struct Peers {
    bank: Arc<PartBank>,
    rule: PeerRule,
    images: Vec<PeerImage>,
    /// Per sample of the source, indices into `images` of its own generated images.
    own: Vec<Vec<usize>>,
    num_classes: usize,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("bank", &self.bank.dir())
            .field("rule", &self.rule)
            .field("images", &self.images.len())
            .finish()
    }
}

impl Peers {
    /// The pool `images` of `bank` used by `rule` for the samples of `source`.
    ///
    /// # Errors
    /// A message if `p` is not a probability, γ not positive, or DiffuseMix has no fractal.
    pub fn new(
        bank: Arc<PartBank>,
        rule: PeerRule,
        images: Vec<PeerImage>,
        source: &dyn SampleSource,
    ) -> Result<Peers, String> {
        let p = rule.probability();
        if !(0.0..=1.0).contains(&p) {
            return Err(format!(
                "replacement probability must be in [0, 1], got {p}"
            ));
        }
        match &rule {
            PeerRule::DiffMix {
                gamma, soft_scaler, ..
            } => {
                if !(gamma.is_finite() && *gamma > 0.0) {
                    return Err(format!("Diff-Mix gamma must be > 0, got {gamma}"));
                }
                if !(soft_scaler.is_finite() && *soft_scaler > 0.0 && *soft_scaler <= 1.0) {
                    return Err(format!(
                        "Diff-Mix soft_scaler must be in (0, 1], got {soft_scaler}"
                    ));
                }
            }
            PeerRule::DiffuseMix { fractals, .. } if fractals.is_empty() => {
                return Err("DiffuseMix needs at least one fractal image".into());
            }
            _ => {}
        }
        let mut by_source: HashMap<&str, Vec<usize>> = HashMap::new();
        for (k, img) in images.iter().enumerate() {
            by_source
                .entry(img.source_image.as_str())
                .or_default()
                .push(k);
        }
        let own = (0..source.len())
            .map(|i| by_source.get(source.id(i)).cloned().unwrap_or_default())
            .collect();
        Ok(Peers {
            bank,
            rule,
            images,
            own,
            num_classes: source.num_classes(),
        })
    }

    /// The rule.
    pub fn rule(&self) -> &PeerRule {
        &self.rule
    }

    /// The pool.
    pub fn images(&self) -> &[PeerImage] {
        &self.images
    }

    /// Samples of the source that have at least one generated image of their own.
    pub fn samples_with_images(&self) -> usize {
        self.own.iter().filter(|o| !o.is_empty()).count()
    }

    /// The rule's decision for sample `i` (label `target`): the pool index and the label, or
    /// `None` for the real image.
    ///
    /// # Errors
    /// A message if the drawn image's label cannot be made (a class out of range).
    pub fn choose(
        &self,
        i: usize,
        target: &[(ClassId, f32)],
        rng: &mut impl Rng,
    ) -> Result<Option<(usize, Label)>, String> {
        let own = self.own.get(i).map_or(&[][..], Vec::as_slice);
        let c = self.num_classes;
        match &self.rule {
            PeerRule::OwnImage { p } | PeerRule::DiffuseMix { p, .. } => {
                // DA-Fusion's rule (the label is the sample's own: multi-label samples keep all).
                match peers::da_fusion::choose(rng, *p, 0, c.max(1), own.len())? {
                    PeerChoice::Generated { index, .. } => Ok(Some((own[index], target.to_vec()))),
                    PeerChoice::Real => Ok(None),
                }
            }
            PeerRule::DiffMix {
                p,
                gamma,
                soft_scaler,
            } => {
                let translations: Vec<diff_mix::Translation> = self
                    .images
                    .iter()
                    .map(|g| diff_mix::Translation {
                        source: g.source_class.index(),
                        target: g.target_class.index(),
                        strength: f64::from(g.strength),
                    })
                    .collect();
                match diff_mix::choose(rng, *p, *gamma, c, &translations)? {
                    PeerChoice::Generated { index, label } => {
                        let label = label
                            .into_iter()
                            .enumerate()
                            .filter(|(_, w)| *w > 0.0)
                            .map(|(k, w)| (ClassId(k as u32), (f64::from(w) * soft_scaler) as f32))
                            .collect();
                        Ok(Some((index, label)))
                    }
                    PeerChoice::Real => Ok(None),
                }
            }
        }
    }

    /// Sample `i` of `epoch` as the rule makes it: `None` for the real image, else the image
    /// and its label. `load_real` reads the sample's real image (DiffuseMix joins it).
    pub(crate) fn produce(
        &self,
        i: usize,
        epoch: u64,
        seed: u64,
        source: &dyn SampleSource,
        load_real: &dyn Fn() -> Result<RgbImage, SampleError>,
    ) -> Result<Option<(RgbImage, Label)>, SampleError> {
        let mut rng = rng_for(seed, Stream::Combine, &[epoch, i as u64]);
        let peer_error = |reason: String| SampleError::Peer {
            sample: source.id(i).to_string(),
            reason,
        };
        let Some((k, label)) = self
            .choose(i, source.target(i), &mut rng)
            .map_err(peer_error)?
        else {
            return Ok(None);
        };
        let g = &self.images[k];
        let generated = self
            .bank
            .load_generated(&g.id)
            .map_err(|e| crate::error::PartError {
                part: g.id.clone(),
                source: Box::new(e),
            })?;
        let image = match &self.rule {
            PeerRule::DiffuseMix {
                side,
                alpha,
                fractals,
                ..
            } => {
                let real = load_real()?;
                let mut draw = rng_for(seed, Stream::Fractal, &[u64::MAX, k as u64]);
                let params = diffusemix::sample(&mut draw, fractals.len()).map_err(peer_error)?;
                let square = |img: &RgbImage| {
                    image::imageops::resize(
                        img,
                        *side,
                        *side,
                        image::imageops::FilterType::CatmullRom,
                    )
                };
                let joined = diffusemix::hybrid(
                    &square(&real),
                    &square(&generated),
                    params.direction,
                    diffusemix::BLEND_WIDTH,
                )
                .map_err(peer_error)?;
                diffusemix::blend_fractal(&joined, &fractals[params.fractal], *alpha)
                    .map_err(peer_error)?
            }
            _ => generated,
        };
        Ok(Some((image, label)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SampleEntry, VecSource};
    use deda_bank::{BankMeta, BankWriter};

    fn source() -> VecSource {
        VecSource {
            samples: (0..4)
                .map(|k| SampleEntry {
                    path: format!("/none/{k}.png").into(),
                    id: format!("s{k}"),
                    target: vec![(ClassId(k % 2), 1.0)],
                })
                .collect(),
            num_classes: 2,
        }
    }

    fn pool() -> Vec<PeerImage> {
        // s0 has two images, s1 one, s2 and s3 none (an emptied class keeps its real images).
        [("s0", 0, 1), ("s0", 0, 0), ("s1", 1, 0)]
            .iter()
            .enumerate()
            .map(|(v, &(s, c, t))| PeerImage {
                id: PartId(format!("gen/{s}-x-v{v}")),
                source_image: s.into(),
                source_class: ClassId(c),
                target_class: ClassId(t),
                strength: 0.81,
            })
            .collect()
    }

    fn bank() -> (tempfile::TempDir, Arc<PartBank>) {
        let dir = tempfile::tempdir().unwrap();
        drop(
            BankWriter::open(
                dir.path(),
                &BankMeta::new(vec!["a".into(), "b".into()]),
                None,
            )
            .unwrap(),
        );
        let bank = PartBank::open(dir.path()).unwrap();
        (dir, Arc::new(bank))
    }

    #[test]
    fn own_image_rules_draw_only_the_samples_own_images() {
        let (_d, bank) = bank();
        let src = source();
        let peers = Peers::new(bank, PeerRule::OwnImage { p: 1.0 }, pool(), &src).unwrap();
        assert_eq!(peers.samples_with_images(), 2);
        let mut seen = [0usize; 3];
        for e in 0..200u64 {
            let mut rng = rng_for(1, Stream::Combine, &[e, 0]);
            let (k, label) = peers.choose(0, src.target(0), &mut rng).unwrap().unwrap();
            assert!(k < 2, "s0 draws only its own images");
            assert_eq!(label, vec![(ClassId(0), 1.0)]);
            seen[k] += 1;
            let mut rng = rng_for(1, Stream::Combine, &[e, 2]);
            assert!(peers.choose(2, src.target(2), &mut rng).unwrap().is_none());
        }
        assert!(seen[0] > 50 && seen[1] > 50, "{seen:?}");
    }

    #[test]
    fn diff_mix_draws_the_whole_pool_with_soft_labels() {
        let (_d, bank) = bank();
        let src = source();
        let rule = PeerRule::DiffMix {
            p: 1.0,
            gamma: 0.5,
            soft_scaler: 1.0,
        };
        let peers = Peers::new(bank, rule, pool(), &src).unwrap();
        let mut seen_from_s2 = 0;
        for e in 0..300u64 {
            let mut rng = rng_for(1, Stream::Combine, &[e, 2]);
            let (k, label) = peers.choose(2, src.target(2), &mut rng).unwrap().unwrap();
            seen_from_s2 += 1;
            if k == 0 {
                // 0 -> 1 at s = 0.81: 0.1 on class 0, 0.9 on class 1.
                let w: Vec<f32> = label.iter().map(|l| l.1).collect();
                assert_eq!(label.len(), 2);
                assert!(
                    (w[0] - 0.1).abs() < 1e-6 && (w[1] - 0.9).abs() < 1e-6,
                    "{label:?}"
                );
            }
        }
        assert_eq!(
            seen_from_s2, 300,
            "a sample without images still draws from the pool"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let (_d, bank) = bank();
        let src = source();
        let refused = |rule| Peers::new(Arc::clone(&bank), rule, pool(), &src).is_err();
        assert!(refused(PeerRule::OwnImage { p: 1.5 }));
        assert!(refused(PeerRule::DiffMix {
            p: 0.1,
            gamma: 0.0,
            soft_scaler: 1.0
        }));
        assert!(refused(PeerRule::DiffuseMix {
            p: 0.5,
            side: 8,
            alpha: 0.2,
            fractals: Vec::new(),
        }));
    }
}
