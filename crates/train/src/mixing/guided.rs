//! GuidedMixup (Kang & Kim, AAAI 2023) as in its FGVC code base (`Implementor/guidedmixup.py`
//! with `--condition greedy --distance_metric l2 --label_mixing saliency_label`, `m_part` = the
//! batch size):
//!
//! 1. saliency maps `s` of the batch (spectral residual for Guided-SR, input gradient for
//!    Guided-AP, see [`crate::mixing::saliency`]), Gaussian-blurred (7, σ 3) and normalised to sum to 1
//!    per image ([`normalise_saliency`]);
//! 2. pairing: L2 distances between the maps, then the reference's greedy single cycle that
//!    starts at the farthest pair and always walks to the farthest not-yet-entered sample
//!    ([`greedy_pairing`]);
//! 3. per-pixel mask `M_a = s_a / (s_a + s_b)`, `M_b = 1 − M_a`; image `M_a·x_a + M_b·x_b`, label
//!    weights `λ_a = mean(M_a)`, `λ_b = mean(M_b)` ([`apply_guided`]), so targets still sum to 1.
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::mixing::saliency::{gaussian_blur, BLUR_KERNEL, BLUR_SIGMA};

/// Blur (7, σ 3) and `sumto1` normalisation of raw saliency maps (N × H × W).
///
/// A map whose sum is 0 (the reference would divide by zero) becomes uniform.
pub fn normalise_saliency(raw: &Tensor) -> Result<Tensor> {
    let blurred = gaussian_blur(raw, BLUR_KERNEL, BLUR_SIGMA)?;
    tch::no_grad(|| {
        let sum = blurred.sum_dim_intlist([-1i64, -2].as_slice(), true, Kind::Float);
        let (h, w) = (blurred.size()[1], blurred.size()[2]);
        let uniform = Tensor::full_like(&blurred, 1.0 / (h * w) as f64);
        let safe = sum.clamp_min(f64::MIN_POSITIVE);
        Ok(blurred.divide(&safe).where_self(&sum.gt(0.0), &uniform))
    })
}

/// The N × N matrix of L2 distances between the flattened maps (N × H × W).
pub fn l2_distances(maps: &Tensor) -> Result<Vec<Vec<f32>>> {
    let n = maps.size()[0];
    let flat = maps.to_kind(Kind::Float).reshape([n, -1]);
    let rows = tch::no_grad(|| {
        let d: Vec<Tensor> = (0..n)
            .map(|i| {
                (&flat - flat.get(i).unsqueeze(0))
                    .square()
                    .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                    .sqrt()
            })
            .collect();
        Tensor::stack(&d, 0).to_device(tch::Device::Cpu)
    });
    let v: Vec<f32> = Vec::try_from(rows.reshape([-1])).map_err(Error::tch("distances to host"))?;
    Ok(v.chunks(n as usize).map(<[f32]>::to_vec).collect())
}

/// Index of the first maximum (numpy `argmax`).
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// The reference's greedy pairing on a distance matrix: `partner[i]` is the sample mixed into
/// sample i. Starts at the farthest pair (first in row-major order), then repeatedly goes from
/// the last partner to its farthest sample not yet entered, zeroing entered columns; the last
/// one closes the cycle.
pub fn greedy_pairing(dist: &[Vec<f32>]) -> Result<Vec<usize>> {
    let n = dist.len();
    if n == 0 || dist.iter().any(|r| r.len() != n) {
        return Err(Error::Shape {
            what: "greedy pairing".into(),
            detail: format!("the distance matrix must be square and non-empty, got {n} rows"),
        });
    }
    let mut x: Vec<Vec<f32>> = dist.to_vec();
    let flat: Vec<f32> = x.iter().flatten().copied().collect();
    let first = argmax(&flat);
    let (first_row, mut col) = (first / n, first % n);
    let mut partner = vec![usize::MAX; n];
    partner[first_row] = col;
    x.iter_mut().for_each(|r| r[first_row] = 0.0);
    for _ in 0..n.saturating_sub(2) {
        let row = col;
        col = argmax(&x[row]);
        partner[row] = col;
        x.iter_mut().for_each(|r| r[row] = 0.0);
    }
    partner[col] = first_row;
    // With ties (e.g. identical maps) the walk can revisit a sample and leave another without a
    // partner, as in the reference; such a sample keeps itself.
    for (i, p) in partner.iter_mut().enumerate() {
        if *p == usize::MAX {
            *p = i;
        }
    }
    Ok(partner)
}

/// Mixes images (N × C × H × W) and targets (N × K) with normalised saliency maps (N × H × W,
/// from [`normalise_saliency`]) and the pairing `partner`; returns the mixed images, targets and
/// each sample's own label weight λ_a (N).
pub fn apply_guided(
    images: &Tensor,
    targets: &Tensor,
    saliency: &Tensor,
    partner: &[usize],
) -> Result<(Tensor, Tensor, Tensor)> {
    let (xs, ts, ss) = (images.size(), targets.size(), saliency.size());
    let n = xs.first().copied().unwrap_or(0);
    if xs.len() != 4
        || ts.len() != 2
        || ss.len() != 3
        || ts[0] != n
        || ss[0] != n
        || ss[1..] != xs[2..]
        || partner.len() as i64 != n
        || partner.iter().any(|&p| p as i64 >= n)
    {
        let detail = format!(
            "images {xs:?}, targets {ts:?}, saliency {ss:?}, {} partners",
            partner.len()
        );
        return Err(Error::Shape {
            what: "guided mixup inputs".into(),
            detail,
        });
    }
    let idx: Vec<i64> = partner.iter().map(|&p| p as i64).collect();
    let idx = Tensor::from_slice(&idx).to_device(images.device());
    tch::no_grad(|| {
        let sal_b = saliency.index_select(0, &idx);
        let sum = saliency + &sal_b;
        let half = Tensor::full_like(&sum, 0.5);
        let safe = sum.clamp_min(f64::MIN_POSITIVE);
        let positive = sum.gt(0.0);
        let mask_a = (saliency / &safe).where_self(&positive, &half);
        let mask_b = (&sal_b / &safe).where_self(&positive, &half);
        let lam_a = mask_a.mean_dim([1i64, 2].as_slice(), false, Kind::Float);
        let lam_b = mask_b.mean_dim([1i64, 2].as_slice(), false, Kind::Float);
        let x = images * mask_a.unsqueeze(1) + images.index_select(0, &idx) * mask_b.unsqueeze(1);
        let t = targets * lam_a.unsqueeze(1) + targets.index_select(0, &idx) * lam_b.unsqueeze(1);
        Ok((x, t, lam_a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_pairing_follows_the_farthest_sample() {
        // Points on a line at 0, 1, 5, 6: the farthest pair is (0, 3), then from 3 the farthest
        // not yet entered is 1, then from 1 it is 2, and 2 closes the cycle back to 0.
        let p = [0.0f32, 1.0, 5.0, 6.0];
        let d: Vec<Vec<f32>> = p
            .iter()
            .map(|a| p.iter().map(|b| (a - b).abs()).collect())
            .collect();
        assert_eq!(greedy_pairing(&d).unwrap(), vec![3, 2, 0, 1]);
        assert_eq!(greedy_pairing(&[vec![0.0]]).unwrap(), vec![0]);
        assert!(greedy_pairing(&[vec![0.0, 1.0]]).is_err());
    }

    #[test]
    fn pairing_of_distinct_maps_is_a_permutation() {
        let maps = Tensor::rand([9, 6, 5], (Kind::Float, tch::Device::Cpu));
        let p = greedy_pairing(&l2_distances(&maps).unwrap()).unwrap();
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..9).collect::<Vec<_>>());
        assert!(p.iter().enumerate().all(|(i, &j)| i != j));
    }
}
