//! Multi-label graph cut on a 4-connected grid by α-β swap moves (Boykov, Veksler & Zabih 2001),
//! the algorithm the Co-Mixup reference asks `gco.cut_grid_graph(..., algorithm='swap')` for.
//!
//! Energy of a labeling `l`: `Σ_p U[p][l_p] + β · Σ_{p~q} V[l_p][l_q]` over horizontal and
//! vertical neighbours. Swap moves need only a semi-metric `V` (symmetric, zero on the diagonal),
//! which Co-Mixup's soft-label pairwise matrix is (it is not a metric, so α-expansion would not
//! apply). Each move is one minimum cut ([`FlowGraph`]); a move is kept only if it lowers the
//! energy, so the energy never increases and the loop ends.
use super::max_flow::FlowGraph;

/// Relative improvement below which a move is not taken (float round-off).
const MIN_GAIN: f64 = 1e-12;
/// Upper bound on full sweeps over all label pairs (convergence takes a few).
const MAX_SWEEPS: usize = 20;

/// A grid labeling problem: `unary[(y·width + x)·labels + l]`, the label-pair cost `pairwise`
/// (`labels × labels`, row-major) and the smoothness weight `beta` of every grid edge.
#[derive(Debug, Clone)]
pub struct GridProblem {
    /// Grid rows.
    pub height: usize,
    /// Grid columns.
    pub width: usize,
    /// Number of labels.
    pub labels: usize,
    /// Unary costs, `height·width·labels`.
    pub unary: Vec<f64>,
    /// Label-pair costs `V`, `labels·labels`.
    pub pairwise: Vec<f64>,
    /// Weight of each neighbour edge.
    pub beta: f64,
}

impl GridProblem {
    /// A Potts problem (`V = 1 − I`).
    pub fn potts(height: usize, width: usize, labels: usize, unary: Vec<f64>, beta: f64) -> Self {
        let pairwise = (0..labels * labels)
            .map(|i| if i / labels == i % labels { 0.0 } else { 1.0 })
            .collect();
        GridProblem {
            height,
            width,
            labels,
            unary,
            pairwise,
            beta,
        }
    }

    fn v(&self, a: usize, b: usize) -> f64 {
        self.pairwise[a * self.labels + b]
    }

    /// The grid neighbours of block `p`.
    fn neighbours(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        let (y, x) = (p / self.width, p % self.width);
        let up = (y > 0).then(|| p - self.width);
        let down = (y + 1 < self.height).then(|| p + self.width);
        let left = (x > 0).then(|| p - 1);
        let right = (x + 1 < self.width).then(|| p + 1);
        [up, down, left, right].into_iter().flatten()
    }

    /// The energy of `labeling` (one label per block, row-major).
    pub fn energy(&self, labeling: &[usize]) -> f64 {
        let unary: f64 = labeling
            .iter()
            .enumerate()
            .map(|(p, &l)| self.unary[p * self.labels + l])
            .sum();
        let mut smooth = 0.0;
        for (p, &l) in labeling.iter().enumerate() {
            for q in self.neighbours(p).filter(|&q| q > p) {
                smooth += self.v(l, labeling[q]);
            }
        }
        unary + self.beta * smooth
    }

    /// The best swap of labels `a` / `b` among the blocks labelled either: min-cut with the
    /// source side meaning `a`. Changes `labeling` in place; returns whether any block moved.
    fn swap_move(&self, labeling: &mut [usize], a: usize, b: usize) -> bool {
        let active: Vec<usize> = (0..labeling.len())
            .filter(|&p| labeling[p] == a || labeling[p] == b)
            .collect();
        if active.is_empty() {
            return false;
        }
        let mut node = vec![usize::MAX; labeling.len()];
        active.iter().enumerate().for_each(|(i, &p)| node[p] = i);
        let (s, t) = (active.len(), active.len() + 1);
        let mut g = FlowGraph::new(active.len() + 2);
        let edge_ab = self.beta * self.v(a, b);
        for (i, &p) in active.iter().enumerate() {
            let (mut cost_a, mut cost_b) = (
                self.unary[p * self.labels + a],
                self.unary[p * self.labels + b],
            );
            for q in self.neighbours(p) {
                if node[q] == usize::MAX {
                    cost_a += self.beta * self.v(a, labeling[q]);
                    cost_b += self.beta * self.v(b, labeling[q]);
                } else if q > p {
                    g.add_edge(i, node[q], edge_ab, edge_ab);
                }
            }
            // Source side = a: cutting s → i (i on the sink side) pays cost_b.
            let low = cost_a.min(cost_b);
            g.add_edge(s, i, cost_b - low, 0.0);
            g.add_edge(i, t, cost_a - low, 0.0);
        }
        g.max_flow(s, t);
        let side = g.source_side(s);
        let mut moved = false;
        for (i, &p) in active.iter().enumerate() {
            let l = if side[i] { a } else { b };
            moved |= labeling[p] != l;
            labeling[p] = l;
        }
        moved
    }

    /// Minimises the energy from `init` by swap sweeps over all label pairs until none lowers
    /// it; returns the final labeling.
    pub fn solve_swap(&self, init: &[usize]) -> Vec<usize> {
        let mut labeling = init.to_vec();
        let mut energy = self.energy(&labeling);
        for _ in 0..MAX_SWEEPS {
            let mut improved = false;
            for a in 0..self.labels {
                for b in a + 1..self.labels {
                    let mut trial = labeling.clone();
                    if !self.swap_move(&mut trial, a, b) {
                        continue;
                    }
                    let e = self.energy(&trial);
                    if e < energy - MIN_GAIN * energy.abs().max(1.0) {
                        labeling = trial;
                        energy = e;
                        improved = true;
                    }
                }
            }
            if !improved {
                break;
            }
        }
        labeling
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};
    use rand::Rng;

    fn random_problem(seed: u64, h: usize, w: usize, labels: usize, beta: f64) -> GridProblem {
        let mut rng = rng_for(seed, Stream::Mix, &[1]);
        let unary = (0..h * w * labels)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        GridProblem::potts(h, w, labels, unary, beta)
    }

    /// Every labeling of the problem, and the lowest energy.
    fn brute_minimum(pb: &GridProblem) -> f64 {
        let n = pb.height * pb.width;
        let total = pb.labels.pow(n as u32);
        (0..total)
            .map(|mut code| {
                let lab: Vec<usize> = (0..n)
                    .map(|_| {
                        let l = code % pb.labels;
                        code /= pb.labels;
                        l
                    })
                    .collect();
                pb.energy(&lab)
            })
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn two_labels_reach_the_exact_minimum() {
        for seed in 0..20 {
            let pb = random_problem(seed, 3, 4, 2, 0.2 + 0.1 * seed as f64);
            let best = brute_minimum(&pb);
            let got = pb.energy(&pb.solve_swap(&[0; 12]));
            assert!((got - best).abs() < 1e-9, "seed {seed}: {got} vs {best}");
        }
    }

    #[test]
    fn three_labels_reach_the_minimum_or_close_and_never_increase() {
        let mut exact = 0;
        for seed in 0..20 {
            let pb = random_problem(100 + seed, 3, 3, 3, 0.3);
            let best = brute_minimum(&pb);
            let init: Vec<usize> = (0..9).map(|p| (p * 7 + seed as usize) % 3).collect();
            let got = pb.energy(&pb.solve_swap(&init));
            assert!(got <= pb.energy(&init) + 1e-12, "seed {seed}");
            assert!(
                got >= best - 1e-9,
                "seed {seed}: below the brute-force minimum"
            );
            // Swap moves are within a factor 2 of the optimum on Potts (positive part).
            assert!(
                got - best <= 2.0 * 0.3 * 12.0,
                "seed {seed}: {got} vs {best}"
            );
            exact += usize::from((got - best).abs() < 1e-9);
        }
        assert!(exact >= 15, "only {exact}/20 exact minima");
    }

    #[test]
    fn strong_smoothness_gives_one_label() {
        let pb = random_problem(3, 4, 4, 3, 100.0);
        let lab = pb.solve_swap(&[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        assert!(lab.iter().all(|&l| l == lab[0]), "{lab:?}");
    }
}
