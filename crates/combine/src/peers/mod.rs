//! The training-time rules of the generative peer methods De-DA is compared with (paper §4,
//! Tables 2–5), as pure, seeded functions on indices, labels and images; no tensor engine.
//!
//! Each peer generates whole images offline (bank kind `gen`, `deda_bank::generated`); during
//! training it decides per sample whether the real image is replaced, by which generated image,
//! and with which label:
//! - [`da_fusion`]: with probability 0.5 the sample is replaced by one of **its own** generated
//!   images, label unchanged;
//! - [`diff_mix`]: with probability 0.1 (0.3 few-shot) by **any** generated image of the set,
//!   with the soft label `(1 − s^γ)·onehot(source) + s^γ·onehot(target)`;
//! - [`real_guidance`]: replaced by one of its own CLIP-filtered generated images;
//! - [`diffusemix`]: the generated image joined to the original over a random horizontal or
//!   vertical half with a linear ramp, then blended with a [`fractal`] image at λ = 0.2; label
//!   kept.
//!
//! Randomness comes from the caller's RNG, derived like De-DA's
//! (`deda_core::rng_for(seed, Stream::Combine, &[epoch, sample])`), so a decision depends only
//! on the seed and the sample, never on threads or order.
pub mod da_fusion;
pub mod diff_mix;
pub mod diffusemix;
pub mod fractal;
pub mod real_guidance;

use rand::Rng;

/// What a peer does with one training sample.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerChoice {
    /// Train on the real image with its label.
    Real,
    /// Train on generated image `index` of the candidates the rule was given, with `label`
    /// (one value per class, summing to 1 unless a rule says otherwise).
    Generated {
        /// Index into the candidate list.
        index: usize,
        /// The soft label.
        label: Vec<f32>,
    },
}

/// The one-hot label of `class` over `num_classes` classes (all zeros if out of range).
pub fn onehot(class: usize, num_classes: usize) -> Vec<f32> {
    let mut v = vec![0.0; num_classes];
    if let Some(x) = v.get_mut(class) {
        *x = 1.0;
    }
    v
}

/// With probability `p`, one of `candidates` drawn uniformly (`None` when there are none or the
/// draw says keep the real image). The probability is drawn first, and only when there is a
/// candidate (as DA-Fusion's `__getitem__` short-circuits).
pub(crate) fn replace_with_probability(
    rng: &mut impl Rng,
    p: f64,
    candidates: usize,
) -> Option<usize> {
    if candidates == 0 || rng.random::<f64>() >= p {
        return None;
    }
    Some(rng.random_range(0..candidates))
}

/// Checks that `p` is a probability.
pub(crate) fn check_probability(what: &'static str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{what} must be in [0, 1], got {p}"))
    }
}
