//! The iterative submodular minimisation with a modular approximation of the supermodular
//! diversity term (the reference's `get_onehot_matrix`): each output in turn is re-labelled by a
//! graph cut whose unary cost is the saliency cost, the Dirichlet prior and the thresholded
//! penalty `2γ·1[A·c > τ]·(A·c)` of the other outputs' counts `c`.
use super::graph_cut::GridProblem;
use super::objective::{label_count, objective, Assignment};
use super::soft_labels::{extended_problem, extra_labels, soft_assignment};
use super::CoMixupParams;

/// The relative change of the objective below which the outer loop stops (the reference's).
const CONVERGED: f64 = 1e-6;

/// The smoothness weight the reference's graph cut really uses: `gco-wrapper` turns float edge
/// weights into integers as `int(w · 1000)` (and label costs as `int(V · 100)` against unaries
/// `int(U · 10⁵)`), so `β / blocks` is truncated to a multiple of 10⁻³ (0.32 / 256 → 0.001).
/// The product is taken in f32, as numpy does on the reference's float32 edge arrays.
pub fn gco_edge_weight(beta: f64) -> f64 {
    f64::from((beta as f32 * 1000.0).trunc()) / 1000.0
}

/// One partition's optimisation problem.
#[derive(Debug, Clone)]
pub struct PartitionProblem {
    /// Inputs (= outputs) of the partition.
    pub n_input: usize,
    /// Block grid rows.
    pub height: usize,
    /// Block grid columns.
    pub width: usize,
    /// Unary costs `−saliency / Σ saliency`, `cost[j·hw + p]`.
    pub cost: Vec<f64>,
    /// The compatibility matrix `A = (1 − ω) I + ω A_dist` (`n_input²`, row-major).
    pub compat: Vec<f64>,
    /// The Dirichlet draw of the prior term (`n_input`).
    pub prior: Vec<f64>,
    /// The random initial labeling, `[output][p]`.
    pub init: Vec<Vec<usize>>,
}

/// What the optimisation produced, with the intermediates the parity test compares.
#[derive(Debug, Clone)]
pub struct PartitionResult {
    /// The unary costs after the prior term, `cost[j·hw + p]`.
    pub cost_prior: Vec<f64>,
    /// The soft assignment of every output.
    pub mask: Assignment,
    /// The objective (without threshold) at the end.
    pub objective: f64,
}

/// Hard one-hot assignment of a labeling.
fn one_hot(labeling: &[usize], n_input: usize) -> Vec<f64> {
    soft_assignment(labeling, n_input, &[])
}

/// The thresholded modular penalty of the counts `penalty` of the other outputs.
fn modular_penalty(pb: &PartitionProblem, penalty: &[f64], gamma: f64, thres: f64) -> Vec<f64> {
    let n = pb.n_input;
    (0..n)
        .map(|j| {
            let ap: f64 = (0..n).map(|k| pb.compat[j * n + k] * penalty[k]).sum();
            if ap > thres {
                2.0 * gamma * ap
            } else {
                0.0
            }
        })
        .collect()
}

/// The reference's `resolve_label`: for each pair of outputs that use the same set of inputs
/// (at least two), the first pays an extra cost on its first input and the second on its
/// second, so that they drift apart. Returns `add_cost[o][j]`.
fn resolve_label(mask: &Assignment, n_input: usize) -> Vec<Vec<f64>> {
    let sets: Vec<Vec<usize>> = mask
        .iter()
        .map(|m| {
            let c = label_count(m, n_input);
            (0..n_input).filter(|&j| c[j] > 0.0).collect()
        })
        .collect();
    let mut add = vec![vec![0.0; n_input]; mask.len()];
    for i1 in 0..sets.len() {
        for i2 in i1 + 1..sets.len() {
            if sets[i1] == sets[i2] && sets[i1].len() > 1 {
                add[i1][sets[i1][0]] = 1.0;
                add[i2][sets[i1][1]] = 1.0;
            }
        }
    }
    add
}

/// Runs the optimisation of one partition.
pub fn optimise_partition(pb: &PartitionProblem, params: &CoMixupParams) -> PartitionResult {
    let (n, h, w) = (pb.n_input, pb.height, pb.width);
    let hw = (h * w) as f64;
    let thres = params.m_thres * hw;
    let (beta, gamma, eta) = (params.m_beta / hw, params.m_gamma / hw, params.m_eta / hw);
    let mut cost = pb.cost.clone();
    for (j, chunk) in cost.chunks_mut(h * w).enumerate() {
        let prior = eta * (pb.prior[j] + 1e-8).ln();
        chunk.iter_mut().for_each(|c| *c -= prior);
    }
    let mut mask: Assignment = pb.init.iter().map(|l| one_hot(l, n)).collect();
    let mut loss_prev = objective(&cost, &mask, (n, h, w), beta, gamma);
    let mut penalty = vec![0.0; n];
    mask.iter().for_each(|m| {
        penalty
            .iter_mut()
            .zip(label_count(m, n))
            .for_each(|(a, b)| *a += b)
    });
    let mut add_cost: Option<Vec<Vec<f64>>> = None;
    let mut loss = loss_prev;
    for iter_idx in 0..params.m_niter {
        for i in 0..mask.len() {
            let count = label_count(&mask[i], n);
            penalty.iter_mut().zip(&count).for_each(|(a, b)| *a -= b);
            let mut per_input = modular_penalty(pb, &penalty, gamma, thres);
            if let Some(add) = &add_cost {
                per_input
                    .iter_mut()
                    .zip(&add[i])
                    .for_each(|(a, b)| *a += gamma * b);
            }
            let mut cost_penalty = vec![0.0; h * w * n];
            for j in 0..n {
                for p in 0..h * w {
                    cost_penalty[p * n + j] = cost[j * h * w + p] + per_input[j];
                }
            }
            let extras = extra_labels(&count, iter_idx);
            let gp: GridProblem =
                extended_problem(&cost_penalty, (n, h, w), &extras, gco_edge_weight(beta));
            let labeling = gp.solve_swap(&vec![0; h * w]);
            mask[i] = soft_assignment(&labeling, n, &extras);
            let count = label_count(&mask[i], n);
            penalty.iter_mut().zip(&count).for_each(|(a, b)| *a += b);
        }
        if params.set_resolve && iter_idx + 2 == params.m_niter {
            add_cost = Some(resolve_label(&mask, n));
        }
        loss = objective(&cost, &mask, (n, h, w), beta, gamma);
        if ((loss_prev - loss) / loss).abs() < CONVERGED {
            break;
        }
        loss_prev = loss;
    }
    PartitionResult {
        cost_prior: cost,
        mask,
        objective: loss,
    }
}
