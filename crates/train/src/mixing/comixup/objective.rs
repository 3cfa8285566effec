//! Co-Mixup's objective (paper Eq. 3 without the threshold, the reference's `obj_fn`): the
//! unary saliency cost, the smoothness of each output's labeling and the supermodular
//! label-diversity term `γ (‖Σ_o c_o‖² − Σ_o ‖c_o‖²)`, with `c_o` the per-input block counts of
//! output `o`.

/// Soft block assignments of all outputs: `mask[o][p·n_input + j]` is the share of input `j`
/// in block `p` (row-major over the `height × width` grid) of output `o`.
pub type Assignment = Vec<Vec<f64>>;

/// Per-input block counts (`n_input`) of one output's assignment.
pub fn label_count(mask: &[f64], n_input: usize) -> Vec<f64> {
    let mut c = vec![0.0; n_input];
    for block in mask.chunks(n_input) {
        c.iter_mut().zip(block).for_each(|(a, b)| *a += b);
    }
    c
}

/// The objective of `mask` with unary costs `cost[j·hw + p]`, smoothness `beta` and diversity
/// `gamma` (both already divided by the block count, as the reference does).
pub fn objective(
    cost: &[f64],
    mask: &Assignment,
    dims: (usize, usize, usize),
    beta: f64,
    gamma: f64,
) -> f64 {
    let (n_input, height, width) = dims;
    let hw = height * width;
    let mut total = 0.0;
    let mut sum_counts = vec![0.0; n_input];
    let mut sq_counts = 0.0;
    for m in mask {
        for p in 0..hw {
            for j in 0..n_input {
                total += cost[j * hw + p] * m[p * n_input + j];
            }
        }
        let mut smooth = 0.0;
        for p in 0..hw {
            let (y, x) = (p / width, p % width);
            let below = (y + 1 < height).then_some(p + width);
            let right = (x + 1 < width).then_some(p + 1);
            for q in [below, right].into_iter().flatten() {
                smooth += (0..n_input)
                    .map(|j| (m[p * n_input + j] - m[q * n_input + j]).powi(2))
                    .sum::<f64>();
            }
        }
        total += beta / 2.0 * smooth;
        let c = label_count(m, n_input);
        sq_counts += c.iter().map(|v| v * v).sum::<f64>();
        sum_counts.iter_mut().zip(&c).for_each(|(a, b)| *a += b);
    }
    total + gamma * (sum_counts.iter().map(|v| v * v).sum::<f64>() - sq_counts)
}
