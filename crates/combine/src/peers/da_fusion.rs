//! DA-Fusion's training rule (`brandontrabucco/da-fusion`, `semantic_aug/few_shot_dataset.py`,
//! `FewShotDataset.__getitem__`): when the sample has generated images and a uniform draw is
//! below `synthetic_probability` (default 0.5), it is replaced by one of **its own** generated
//! images chosen uniformly (`random.choice(self.synthetic_examples[idx])`); the label is the
//! sample's own (the images were generated into its class). Otherwise the real image is used.
use super::{check_probability, onehot, replace_with_probability, PeerChoice};
use rand::Rng;

/// DA-Fusion's default `synthetic_probability`.
pub const SYNTHETIC_PROBABILITY: f64 = 0.5;

/// The strengths of DA-Fusion's "stacking" runs, one drawn per generated image with p = 0.25
/// each (the De-DA paper, §4; `scripts/stacking/launch_textual_inversion=1.0-0.75-0.5-0.25_coco.sh`:
/// `--strength 1.0 0.75 0.5 0.25 --probs 0.25 0.25 0.25 0.25 --compose parallel
/// --num-synthetic 10 --synthetic-probability 0.5`).
pub const STRENGTHS: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

/// The img2img strength of one generated image: uniform from [`STRENGTHS`].
pub fn plan_strength(rng: &mut impl Rng) -> f64 {
    STRENGTHS[rng.random_range(0..STRENGTHS.len())]
}

/// DA-Fusion's rule for one sample of class `class` with `own_generated` generated images.
///
/// # Errors
/// A message if `p` is not a probability.
pub fn choose(
    rng: &mut impl Rng,
    p: f64,
    class: usize,
    num_classes: usize,
    own_generated: usize,
) -> Result<PeerChoice, String> {
    check_probability("DA-Fusion synthetic_probability", p)?;
    Ok(match replace_with_probability(rng, p, own_generated) {
        Some(index) => PeerChoice::Generated {
            index,
            label: onehot(class, num_classes),
        },
        None => PeerChoice::Real,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};

    #[test]
    fn replaces_about_half_uniformly_among_its_own() {
        let (mut replaced, mut counts) = (0, [0usize; 3]);
        let n = 20_000;
        for s in 0..n {
            let mut rng = rng_for(1, Stream::Combine, &[0, s]);
            match choose(&mut rng, SYNTHETIC_PROBABILITY, 2, 4, 3).unwrap() {
                PeerChoice::Generated { index, label } => {
                    replaced += 1;
                    counts[index] += 1;
                    assert_eq!(label, vec![0.0, 0.0, 1.0, 0.0]);
                }
                PeerChoice::Real => {}
            }
        }
        let rate = replaced as f64 / n as f64;
        assert!((rate - 0.5).abs() < 0.02, "{rate}");
        for c in counts {
            let share = c as f64 / replaced as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.02, "{counts:?}");
        }
    }

    #[test]
    fn strengths_are_drawn_from_the_stacking_set() {
        let mut seen = [0usize; 4];
        for s in 0..2000 {
            let v = plan_strength(&mut rng_for(1, Stream::Edit, &[s]));
            let i = STRENGTHS.iter().position(|&x| x == v).unwrap();
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&c| (400..600).contains(&c)), "{seen:?}");
    }

    #[test]
    fn without_generated_images_the_sample_stays_real() {
        let mut rng = rng_for(1, Stream::Combine, &[0, 0]);
        assert_eq!(choose(&mut rng, 1.0, 0, 2, 0).unwrap(), PeerChoice::Real);
        assert!(matches!(
            choose(&mut rng, 1.0, 0, 2, 1).unwrap(),
            PeerChoice::Generated { index: 0, .. }
        ));
        assert!(choose(&mut rng, 1.5, 0, 2, 1).is_err());
    }

    #[test]
    fn the_same_seed_and_sample_give_the_same_choice() {
        let a = choose(&mut rng_for(3, Stream::Combine, &[2, 7]), 0.5, 1, 3, 5).unwrap();
        let b = choose(&mut rng_for(3, Stream::Combine, &[2, 7]), 0.5, 1, 3, 5).unwrap();
        assert_eq!(a, b);
    }
}
