//! Diff-Mix's training rule (`Zhicaiwww/Diff-Mix`).
//!
//! - Replacement (`dataset/base.py`, `HugFewShotDataset.__getitem__`): with probability
//!   `synthetic_probability` the sample is replaced by a generated image drawn uniformly from
//!   the **whole** generated set (`np.random.choice(self.syn_nums)`), whatever the sample's
//!   class; `--syndata_p` defaults to 0.1 (`downstream_tasks/train_hub.py`,
//!   `scripts/classification.sh`); the De-DA issue's few-shot / long-tail setting is 0.3.
//! - Soft label (`dataset/base.py`, `get_syn_item`): for an image translated from class
//!   `source` towards `target` at strength `s`,
//!   `label[source] += c·(1 − s^γ)`, `label[target] += c·s^γ` with `soft_scaler` c = 1. The
//!   paper's γ is 0.5 (our default, [`GAMMA`]); the code's `--gamma` default is 1.0 and its
//!   scripts use 0.8.
//! - Label smoothing (`downstream_tasks/losses.py`, `LabelSmoothingLoss`, smoothing 0.1 in
//!   `train_hub.py`): a soft target becomes `ε/(C − 1) + (1 − ε)·target`
//!   ([`smooth_soft_label`]; it sums to `1 + ε/(C − 1)`, as in the reference).
use super::{check_probability, PeerChoice};
use rand::Rng;

/// Diff-Mix's γ in the paper (the soft label's strength exponent).
pub const GAMMA: f64 = 0.5;
/// `--syndata_p` default.
pub const SYNTHETIC_PROBABILITY: f64 = 0.1;
/// Replacement probability for few-shot and long-tail sets.
pub const SYNTHETIC_PROBABILITY_FEW_SHOT: f64 = 0.3;
/// `LabelSmoothingLoss(smoothing=0.1)` in `train_hub.py`.
pub const LABEL_SMOOTHING: f64 = 0.1;

/// Strengths the De-DA paper gives Diff-Mix (§4, "random strengths s ∈ {0.5, 0.7, 0.9}").
pub const PAPER_STRENGTHS: [f64; 3] = [0.5, 0.7, 0.9];
/// The code's `--strength_strategy uniform` set (`scripts/sample_mp.py`).
pub const CODE_UNIFORM_STRENGTHS: [f64; 4] = [0.3, 0.5, 0.7, 0.9];
/// The code's fixed strength in its README and `scripts/classification.sh` data folder.
pub const FIXED_STRENGTH: f64 = 0.7;

/// Draws the translation of one generated image of a `source`-class image
/// (`scripts/sample_mp.py`, strategy `diff-mix`): the target class uniform over **all**
/// `num_classes` classes (`random.choices(range(C))`, so it may be the source's own), the
/// strength uniform from `strengths`.
///
/// The reference draws source classes uniformly too and then a random image of each; here every
/// real image is translated `k` times instead (the same expansion multiplier, each image used
/// equally). Its batches also share the first task's target class; ours do not.
///
/// # Errors
/// A message if `num_classes` is 0 or `strengths` is empty or leaves [0, 1].
pub fn plan_translation(
    rng: &mut impl Rng,
    source: usize,
    num_classes: usize,
    strengths: &[f64],
) -> Result<Translation, String> {
    if num_classes == 0 || source >= num_classes {
        return Err(format!(
            "Diff-Mix: source class {source} of {num_classes} classes"
        ));
    }
    if strengths.is_empty() || strengths.iter().any(|s| !(0.0..=1.0).contains(s)) {
        return Err(format!(
            "Diff-Mix strengths {strengths:?} must be in [0, 1], at least one"
        ));
    }
    let target = rng.random_range(0..num_classes);
    let strength = strengths[rng.random_range(0..strengths.len())];
    Ok(Translation {
        source,
        target,
        strength,
    })
}

/// One generated image's label facts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Translation {
    /// The real image's class.
    pub source: usize,
    /// The class it was translated towards.
    pub target: usize,
    /// The img2img strength s in [0, 1].
    pub strength: f64,
}

/// `(1 − s^γ)·onehot(source) + s^γ·onehot(target)` over `num_classes` (added, so source ==
/// target gives a one-hot).
///
/// # Errors
/// A message if a class is out of range, the strength is outside [0, 1] or γ is not positive.
pub fn soft_label(t: Translation, gamma: f64, num_classes: usize) -> Result<Vec<f32>, String> {
    if t.source >= num_classes || t.target >= num_classes {
        return Err(format!(
            "Diff-Mix label: classes {} -> {} out of range for {num_classes} classes",
            t.source, t.target
        ));
    }
    if !(0.0..=1.0).contains(&t.strength) {
        return Err(format!(
            "Diff-Mix strength {} is outside [0, 1]",
            t.strength
        ));
    }
    if !(gamma > 0.0 && gamma.is_finite()) {
        return Err(format!("Diff-Mix gamma must be positive, got {gamma}"));
    }
    let w = t.strength.powf(gamma);
    let mut label = vec![0.0f64; num_classes];
    label[t.source] += 1.0 - w;
    label[t.target] += w;
    Ok(label.into_iter().map(|v| v as f32).collect())
}

/// `LabelSmoothingLoss`'s target for a soft label: `ε/(C − 1) + (1 − ε)·target`.
pub fn smooth_soft_label(target: &[f32], epsilon: f64) -> Vec<f32> {
    let c = target.len();
    let off = if c > 1 { epsilon / (c - 1) as f64 } else { 0.0 };
    target
        .iter()
        .map(|&t| (off + (1.0 - epsilon) * f64::from(t)) as f32)
        .collect()
}

/// Diff-Mix's rule for one sample: with probability `p`, generated image `index` of the whole
/// set `generated` (uniform) with its soft label; otherwise the real image.
///
/// # Errors
/// A message if `p` is not a probability or the drawn image's label is invalid.
pub fn choose(
    rng: &mut impl Rng,
    p: f64,
    gamma: f64,
    num_classes: usize,
    generated: &[Translation],
) -> Result<PeerChoice, String> {
    check_probability("Diff-Mix synthetic_probability", p)?;
    if generated.is_empty() || rng.random::<f64>() >= p {
        return Ok(PeerChoice::Real);
    }
    let index = rng.random_range(0..generated.len());
    Ok(PeerChoice::Generated {
        index,
        label: soft_label(generated[index], gamma, num_classes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};

    #[test]
    fn soft_label_follows_the_strength_power() {
        let t = Translation {
            source: 0,
            target: 2,
            strength: 0.49,
        };
        let l = soft_label(t, 0.5, 3).unwrap();
        assert!(
            (l[0] - 0.3).abs() < 1e-6 && (l[2] - 0.7).abs() < 1e-6,
            "{l:?}"
        );
        assert_eq!(l[1], 0.0);
        let l = soft_label(t, 1.0, 3).unwrap();
        assert!((l[0] - 0.51).abs() < 1e-6 && (l[2] - 0.49).abs() < 1e-6);
        let same = Translation { target: 0, ..t };
        assert_eq!(soft_label(same, 0.5, 3).unwrap(), vec![1.0, 0.0, 0.0]);
        let full = Translation { strength: 1.0, ..t };
        assert_eq!(soft_label(full, 0.5, 3).unwrap(), vec![0.0, 0.0, 1.0]);
        assert!(soft_label(Translation { target: 3, ..t }, 0.5, 3).is_err());
        assert!(soft_label(Translation { strength: 1.2, ..t }, 0.5, 3).is_err());
        assert!(soft_label(t, 0.0, 3).is_err());
    }

    #[test]
    fn translations_cover_every_target_and_strength() {
        let mut targets = [0usize; 3];
        let mut strengths = std::collections::BTreeMap::new();
        for s in 0..3000 {
            let mut rng = rng_for(2, Stream::Edit, &[s]);
            let t = plan_translation(&mut rng, 1, 3, &PAPER_STRENGTHS).unwrap();
            assert_eq!(t.source, 1);
            targets[t.target] += 1;
            *strengths
                .entry((t.strength * 10.0) as u32)
                .or_insert(0usize) += 1;
        }
        assert!(
            targets.iter().all(|&c| (850..1150).contains(&c)),
            "{targets:?}"
        );
        assert_eq!(strengths.keys().copied().collect::<Vec<_>>(), vec![5, 7, 9]);
        let mut rng = rng_for(2, Stream::Edit, &[0]);
        assert!(plan_translation(&mut rng, 3, 3, &PAPER_STRENGTHS).is_err());
        assert!(plan_translation(&mut rng, 0, 3, &[]).is_err());
        assert!(plan_translation(&mut rng, 0, 3, &[1.5]).is_err());
    }

    #[test]
    fn smoothing_matches_label_smoothing_loss() {
        let s = smooth_soft_label(&[0.3, 0.0, 0.7], 0.1);
        let want = [0.05 + 0.27, 0.05, 0.05 + 0.63];
        for (a, b) in s.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{s:?}");
        }
    }

    #[test]
    fn draws_from_the_whole_set_with_probability_p() {
        let generated: Vec<Translation> = (0..4)
            .map(|k| Translation {
                source: k % 2,
                target: (k + 1) % 2,
                strength: 0.7,
            })
            .collect();
        let (n, mut replaced, mut seen) = (20_000u64, 0, [0usize; 4]);
        for s in 0..n {
            let mut rng = rng_for(9, Stream::Combine, &[0, s]);
            if let PeerChoice::Generated { index, label } =
                choose(&mut rng, SYNTHETIC_PROBABILITY, GAMMA, 2, &generated).unwrap()
            {
                replaced += 1;
                seen[index] += 1;
                assert!((label.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
        }
        let rate = replaced as f64 / n as f64;
        assert!((rate - 0.1).abs() < 0.01, "{rate}");
        assert!(seen.iter().all(|&c| c > 350), "{seen:?}");
        let mut rng = rng_for(9, Stream::Combine, &[0, 0]);
        assert_eq!(
            choose(&mut rng, 1.0, GAMMA, 2, &[]).unwrap(),
            PeerChoice::Real
        );
    }
}
