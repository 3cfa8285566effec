//! Co-Mixup (Kim et al., ICLR 2021) as in the GuidedMixup FGVC code base
//! (`Implementor/comixup.py`, `Utils/comixup_augmentation/{mixup,match}.py`):
//!
//! 1. saliency `√(mean_c (∂L/∂x)²)` of the batch ([`crate::mixing::saliency::gradient_saliency`]);
//! 2. compatibility: L1 distances between the argmax positions of each map after an 8 × 8
//!    stride-1 average pool ([`compatibility_distances`]);
//! 3. per partition of `m_part` samples: block saliency (average pool with block size
//!    `W / 2^m_block_num`), cost `−s / Σ s`, `A = (1 − ω) I + ω · n · A_dist / Σ A_dist`, a
//!    Dirichlet(α) prior, a random initial labeling, then the iterative graph-cut optimisation
//!    ([`optimize::optimise_partition`]);
//! 4. mixing: block-wise images and area-weighted targets ([`mask::mix_input`]).
//!
//! The clean-input term (`clean_lam`, default 1.0): the saliency's forward on the clean batch
//! runs in training mode and its loss, times `clean_lam`, is kept in the update: the step
//! minimises `L(mixed) + clean_lam · L(clean)` (the GuidedMixup code base's
//! `Implementor/comixup.py`: the clean loss is back-propagated before the mixed one, without
//! clearing the gradients in between; Co-Mixup's own `main.py` scales it by `2 / C` because its
//! mixed loss is a BCE over the C classes). With `clean_lam = 0` the saliency forward runs in
//! evaluation mode and only the mixed loss trains. See [`crate::TrainStep`].
//!
//! L is the run's loss, as for the saliency of step 1: the soft-label cross-entropy, or binary
//! cross-entropy with logits on multi-hot targets under the multi-label loss (`[train] loss =
//! bce`, or `auto` on VOC).
pub mod graph_cut;
pub mod mask;
pub mod max_flow;
pub mod objective;
pub mod optimize;
pub mod soft_labels;

use rand::Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use optimize::{optimise_partition, PartitionProblem};

/// Co-Mixup's knobs, with the reference's defaults (the `[method.comixup]` table; the
/// Dirichlet concentration is `method.alpha`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoMixupParams {
    /// log2 of the blocks per side (4: a 16 × 16 grid).
    pub m_block_num: u32,
    /// Partition size: outputs are optimised jointly within groups of this many samples.
    pub m_part: usize,
    /// Smoothness coefficient β.
    pub m_beta: f64,
    /// Supermodular diversity coefficient γ.
    pub m_gamma: f64,
    /// Over-penalisation threshold τ (hard threshold), a fraction of the blocks.
    pub m_thres: f64,
    /// Prior coefficient η.
    pub m_eta: f64,
    /// Input-compatibility coefficient ω.
    pub m_omega: f64,
    /// Outer iterations.
    pub m_niter: usize,
    /// Whether to push apart outputs that use the same inputs (`set_resolve`).
    pub set_resolve: bool,
    /// Weight of the clean batch's loss added to the update (`clean_lam`, 1.0; 0: none, and
    /// the saliency forward runs in evaluation mode).
    pub clean_lam: f64,
    /// Dirichlet concentration of the prior (the reference's `--alpha`; set from `method.alpha`).
    #[serde(skip)]
    pub alpha: f64,
}

impl Default for CoMixupParams {
    fn default() -> Self {
        CoMixupParams {
            m_block_num: 4,
            m_part: 20,
            m_beta: 0.32,
            m_gamma: 1.0,
            m_thres: 0.83,
            m_eta: 0.05,
            m_omega: 0.001,
            m_niter: 4,
            set_resolve: true,
            clean_lam: 1.0,
            alpha: 1.0,
        }
    }
}

impl CoMixupParams {
    /// Every problem with the knobs, named as in `[method.comixup]`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1..=8).contains(&self.m_block_num) {
            p.push(format!(
                "m_block_num must be in 1..=8, got {}",
                self.m_block_num
            ));
        }
        if self.m_part == 0 || self.m_niter == 0 {
            p.push(format!(
                "m_part and m_niter must be >= 1, got {} and {}",
                self.m_part, self.m_niter
            ));
        }
        for (name, v) in [
            ("m_beta", self.m_beta),
            ("m_gamma", self.m_gamma),
            ("m_thres", self.m_thres),
            ("m_eta", self.m_eta),
            ("m_omega", self.m_omega),
            ("clean_lam", self.clean_lam),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                p.push(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        if self.m_omega > 1.0 {
            p.push(format!("m_omega must be <= 1, got {}", self.m_omega));
        }
        p
    }
}

/// L1 distances between the most salient positions (argmax after an 8 × 8 stride-1 average
/// pool, smaller for tiny images) of the raw maps (N × H × W): `n²`, row-major.
pub fn compatibility_distances(raw: &Tensor) -> Result<Vec<f64>> {
    let s = raw.size();
    let k = 8.min(s[1]).min(s[2]);
    let pos: Vec<i64> = tch::no_grad(|| {
        let z = raw.to_kind(Kind::Float).unsqueeze(1).avg_pool2d(
            [k, k],
            [1, 1],
            [0, 0],
            false,
            true,
            None::<i64>,
        );
        let zw = z.size()[3];
        let idx = z.reshape([s[0], -1]).argmax(1, false);
        Tensor::stack(&[idx.divide_scalar_mode(zw, "floor"), idx.remainder(zw)], 1)
            .to_device(tch::Device::Cpu)
            .reshape([-1])
    })
    .try_into()
    .map_err(Error::tch("co-mixup argmax positions"))?;
    let n = s[0] as usize;
    let mut d = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            d[i * n + j] =
                ((pos[2 * i] - pos[2 * j]).abs() + (pos[2 * i + 1] - pos[2 * j + 1]).abs()) as f64;
        }
    }
    Ok(d)
}

/// Block saliency (N × gh × gw as `Vec`, and the grid) by average pooling with the reference's
/// block size `W / 2^m_block_num`.
pub fn block_saliency(raw: &Tensor, m_block_num: u32) -> Result<(Vec<f64>, (usize, usize))> {
    let s = raw.size();
    let block = s[2] / (1i64 << m_block_num);
    if s.len() != 3 || block < 1 {
        return Err(Error::Shape {
            what: "co-mixup saliency".into(),
            detail: format!("maps {s:?} are too small for 2^{m_block_num} blocks per side"),
        });
    }
    let pooled = tch::no_grad(|| {
        raw.to_kind(Kind::Float).unsqueeze(1).avg_pool2d(
            [block, block],
            [block, block],
            [0, 0],
            false,
            true,
            None::<i64>,
        )
    });
    let g = pooled.size();
    let v: Vec<f32> = pooled
        .to_device(tch::Device::Cpu)
        .reshape([-1])
        .try_into()
        .map_err(Error::tch("co-mixup block saliency"))?;
    Ok((
        v.into_iter().map(f64::from).collect(),
        (g[2] as usize, g[3] as usize),
    ))
}

/// A Dirichlet(α·1) draw of `n` weights (normalised Gamma(α, 1) draws).
pub fn sample_dirichlet<R: Rng + ?Sized>(rng: &mut R, alpha: f64, n: usize) -> Result<Vec<f64>> {
    let gamma = Gamma::new(alpha, 1.0).map_err(|e| Error::Config {
        what: "co-mixup".into(),
        problems: vec![format!("Dirichlet alpha {alpha}: {e}")],
    })?;
    let g: Vec<f64> = (0..n).map(|_| gamma.sample(rng)).collect();
    let total: f64 = g.iter().sum();
    Ok(g.iter().map(|v| v / total.max(f64::MIN_POSITIVE)).collect())
}

/// The problem of the partition `range` from the block saliency and compatibility distances,
/// drawing its prior and initial labeling from `rng`.
fn partition_problem<R: Rng + ?Sized>(
    rng: &mut R,
    params: &CoMixupParams,
    sal: &[f64],
    dist: &[f64],
    batch: usize,
    range: std::ops::Range<usize>,
    grid: (usize, usize),
) -> Result<PartitionProblem> {
    let hw = grid.0 * grid.1;
    let n = range.len();
    let mut cost = Vec::with_capacity(n * hw);
    for i in range.clone() {
        let s = &sal[i * hw..(i + 1) * hw];
        let total: f64 = s.iter().sum();
        let total = if total > 0.0 { total } else { 1.0 };
        cost.extend(s.iter().map(|v| -v / total));
    }
    let dsum: f64 = range
        .clone()
        .flat_map(|i| range.clone().map(move |j| dist[i * batch + j]))
        .sum();
    let scale = if dsum > 0.0 { n as f64 / dsum } else { 0.0 };
    let mut compat = vec![0.0; n * n];
    for (a, i) in range.clone().enumerate() {
        for (b, j) in range.clone().enumerate() {
            let eye = if a == b { 1.0 } else { 0.0 };
            compat[a * n + b] =
                (1.0 - params.m_omega) * eye + params.m_omega * dist[i * batch + j] * scale;
        }
    }
    let prior = sample_dirichlet(rng, params.alpha, n)?;
    let init = (0..n)
        .map(|_| (0..hw).map(|_| rng.random_range(0..n)).collect())
        .collect();
    Ok(PartitionProblem {
        n_input: n,
        height: grid.0,
        width: grid.1,
        cost,
        compat,
        prior,
        init,
    })
}

/// Co-Mixup of a batch (`images` N × C × H × W, `targets` N × K) given its raw saliency maps
/// (N × H × W); returns the mixed images and targets.
pub fn comixup_batch<R: Rng + ?Sized>(
    rng: &mut R,
    params: &CoMixupParams,
    images: &Tensor,
    targets: &Tensor,
    raw: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let batch = images.size()[0] as usize;
    if raw.size().first().copied() != Some(batch as i64) || params.m_part == 0 {
        return Err(Error::Shape {
            what: "co-mixup".into(),
            detail: format!(
                "saliency {:?} for images {:?}, m_part {}",
                raw.size(),
                images.size(),
                params.m_part
            ),
        });
    }
    let (sal, grid) = block_saliency(raw, params.m_block_num)?;
    let dist = compatibility_distances(raw)?;
    let (mut xs, mut ts) = (Vec::new(), Vec::new());
    for start in (0..batch).step_by(params.m_part) {
        let range = start..(start + params.m_part).min(batch);
        let pb = partition_problem(rng, params, &sal, &dist, batch, range.clone(), grid)?;
        let res = optimise_partition(&pb, params);
        let len = range.len() as i64;
        let (x, t) = mask::mix_input(
            &res.mask,
            grid,
            &images.narrow(0, start as i64, len),
            &targets.narrow(0, start as i64, len),
        )?;
        xs.push(x);
        ts.push(t);
    }
    Ok((Tensor::cat(&xs, 0), Tensor::cat(&ts, 0)))
}
