//! Co-Mixup's graph cut against the reference's solver: problems shaped like Co-Mixup's (block
//! grids 4–16, Potts plus half-half labels at 0.25) solved by `gco.cut_grid_graph(...,
//! algorithm='swap')`, fixture from tools/parity/make_comixup_fixture.py.
//!
//! - Small problems whose global optimum the script found by enumerating every labeling, unique
//!   by a margin of at least 1e-3 and found by gco too: our labeling must be the same, block for
//!   block, and its energy the reference's.
//! - Larger problems (swap labelings can differ on ties and stop at different local minima): the
//!   energy of gco's labeling computed by our `energy()` must equal the one computed on the
//!   reference side, and ours must be as low.
use std::collections::HashMap;
use std::path::PathBuf;

use deda_parity::Tolerance;
use deda_train::mixing::comixup::graph_cut::GridProblem;
use deda_train::mixing::comixup::optimize::gco_edge_weight;
use tch::Tensor;

/// Energies are sums of float32 unaries in float64 on both sides.
const ENERGY_TOL: Tolerance = Tolerance {
    abs: 1e-9,
    rel: 1e-9,
};

fn fixture() -> HashMap<String, Tensor> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/comixup_gco/problems.safetensors");
    assert!(
        p.is_file(),
        "missing {} (run tools/parity/make_comixup_fixture.py)",
        p.display()
    );
    Tensor::read_safetensors(&p).unwrap().into_iter().collect()
}

fn labels(t: &Tensor) -> Vec<usize> {
    Vec::<i64>::try_from(t.reshape([-1]))
        .unwrap()
        .into_iter()
        .map(|l| l as usize)
        .collect()
}

/// Problem `k` of the fixture under `prefix` ("" or "exact.").
fn grid_problem(f: &HashMap<String, Tensor>, prefix: &str, k: usize) -> GridProblem {
    let unary = &f[&format!("{prefix}unary.{k}")];
    let s = unary.size();
    GridProblem {
        height: s[0] as usize,
        width: s[1] as usize,
        labels: s[2] as usize,
        unary: floats(unary),
        pairwise: floats(&f[&format!("{prefix}pairwise.{k}")]),
        beta: gco_edge_weight(floats(&f[&format!("{prefix}beta.{k}")])[0]),
    }
}

fn floats(t: &Tensor) -> Vec<f64> {
    Vec::<f32>::try_from(t.reshape([-1]))
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

#[test]
fn swap_energies_match_gco() {
    let f = fixture();
    let n_problems = f.keys().filter(|k| k.starts_with("unary.")).count();
    assert_eq!(n_problems, 8, "fixture problems");
    let mut worst: f64 = 0.0;
    for k in 0..n_problems {
        let pb = grid_problem(&f, "", k);
        let (h, w, labels) = (pb.height, pb.width, pb.labels);
        let gco = self::labels(&f[&format!("labels.{k}")]);
        let e_reference = f[&format!("energy.{k}")].double_value(&[0]);
        deda_parity::assert_scalar_close(
            &format!("problem {k}: energy of gco's labeling, ours vs the reference's"),
            pb.energy(&gco),
            e_reference,
            ENERGY_TOL,
        );
        let ours = pb.solve_swap(&vec![0; h * w]);
        let (e_ours, e_gco) = (pb.energy(&ours), pb.energy(&gco));
        let same = ours.iter().zip(&gco).filter(|(a, b)| a == b).count();
        println!(
            "problem {k} ({h}x{w}, {labels} labels): energy ours {e_ours:.6} gco {e_gco:.6}, \
             {same}/{} blocks equal",
            h * w
        );
        // gco rounds unaries to 1e-5 and stops at a local minimum: ours must be as low.
        assert!(
            e_ours <= e_gco + 1e-5 * (h * w) as f64,
            "problem {k}: ours {e_ours} vs gco {e_gco}"
        );
        worst = worst.max((e_ours - e_gco).abs());
    }
    println!("max |energy difference| {worst:.3e}");
}

#[test]
fn unique_optima_are_the_labelings_of_gco() {
    let f = fixture();
    let n = f.keys().filter(|k| k.starts_with("exact.unary.")).count();
    assert_eq!(n, 6, "fixture problems with a unique optimum");
    for k in 0..n {
        let pb = grid_problem(&f, "exact.", k);
        let want = labels(&f[&format!("exact.labels.{k}")]);
        let gap = f[&format!("exact.gap.{k}")].double_value(&[0]);
        assert!(gap > 1e-3, "problem {k}: optimum not unique enough ({gap})");
        let ours = pb.solve_swap(&vec![0; pb.height * pb.width]);
        let shape = [pb.height, pb.width];
        deda_parity::assert_close(
            &format!("exact problem {k} labeling (gap {gap:.1e})"),
            &ours,
            &want,
            &shape,
            Tolerance::EXACT,
        );
        deda_parity::assert_scalar_close(
            &format!("exact problem {k} energy"),
            pb.energy(&ours),
            f[&format!("exact.energy.{k}")].double_value(&[0]),
            ENERGY_TOL,
        );
    }
}
