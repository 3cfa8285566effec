//! The reference's "efficient extension to multi-label" (`graphcut_wrapper`): after the first
//! outer iteration, an output already built from 2 inputs gets one extra label meaning "half of
//! each", and one built from 3 or more gets three extra labels, the halves of each pair of its
//! 3 most used inputs. Extra labels cost the mean of their inputs' costs minus 5·10⁻⁴ and are
//! 0.25 away from their own inputs (1 from everything else) in the pairwise matrix.
use super::graph_cut::GridProblem;

/// Cost discount of a half-half label (the reference's `5e-4`), so that it wins ties.
const HALF_DISCOUNT: f64 = 5e-4;
/// Pairwise cost between a half-half label and one of its two inputs.
const HALF_PAIRWISE: f64 = 0.25;

/// The extra labels of one output: each is a list of `(input, share)`.
pub fn extra_labels(label_count: &[f64], iter_idx: usize) -> Vec<Vec<(usize, f64)>> {
    let assigned: Vec<usize> = (0..label_count.len())
        .filter(|&j| label_count[j] > 0.0)
        .collect();
    if iter_idx == 0 || assigned.len() < 2 {
        return Vec::new();
    }
    if assigned.len() == 2 {
        return vec![vec![(assigned[0], 0.5), (assigned[1], 0.5)]];
    }
    // The 3 most used inputs (first index wins ties), then in index order as the reference's
    // boolean mask orders them.
    let mut order: Vec<usize> = assigned;
    order.sort_by(|&a, &b| label_count[b].total_cmp(&label_count[a]).then(a.cmp(&b)));
    let mut top: Vec<usize> = order.into_iter().take(3).collect();
    top.sort_unstable();
    let (k0, k1, k2) = (top[0], top[1], top[2]);
    vec![
        vec![(k0, 0.5), (k1, 0.5)],
        vec![(k0, 0.5), (k2, 0.5)],
        vec![(k1, 0.5), (k2, 0.5)],
    ]
}

/// The graph-cut problem of one output: unary `cost_penalty[p·n_input + j]` extended by the
/// extra labels, Potts pairwise except 0.25 between a half-half label and its inputs.
pub fn extended_problem(
    cost_penalty: &[f64],
    dims: (usize, usize, usize),
    extras: &[Vec<(usize, f64)>],
    beta: f64,
) -> GridProblem {
    let (n_input, height, width) = dims;
    let labels = n_input + extras.len();
    let mut unary = Vec::with_capacity(height * width * labels);
    for block in cost_penalty.chunks(n_input) {
        unary.extend_from_slice(block);
        for e in extras {
            let mean: f64 = e.iter().map(|&(j, s)| s * block[j]).sum();
            unary.push(mean - HALF_DISCOUNT);
        }
    }
    let mut pb = GridProblem::potts(height, width, labels, unary, beta);
    for (r, e) in extras.iter().enumerate() {
        for &(j, _) in e {
            pb.pairwise[(n_input + r) * labels + j] = HALF_PAIRWISE;
            pb.pairwise[j * labels + n_input + r] = HALF_PAIRWISE;
        }
    }
    pb
}

/// One output's soft assignment (`p·n_input + j`) from a labeling of the extended problem.
pub fn soft_assignment(
    labeling: &[usize],
    n_input: usize,
    extras: &[Vec<(usize, f64)>],
) -> Vec<f64> {
    let mut m = vec![0.0; labeling.len() * n_input];
    for (p, &l) in labeling.iter().enumerate() {
        if l < n_input {
            m[p * n_input + l] = 1.0;
        } else if let Some(e) = extras.get(l - n_input) {
            e.iter().for_each(|&(j, s)| m[p * n_input + j] += s);
        }
    }
    m
}
