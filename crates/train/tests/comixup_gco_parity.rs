//! Co-Mixup's graph cut against the reference's solver: problems shaped like Co-Mixup's (block
//! grids 4–16, Potts plus half-half labels at 0.25) solved by `gco.cut_grid_graph(...,
//! algorithm='swap')`, fixture from tools/parity/make_comixup_fixture.py. Swap labelings can
//! differ on ties, so the energies are compared, with gco's truncated edge weight.
use std::collections::HashMap;
use std::path::PathBuf;

use deda_train::mixing::comixup::graph_cut::GridProblem;
use deda_train::mixing::comixup::optimize::gco_edge_weight;
use tch::Tensor;

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
        let unary = &f[&format!("unary.{k}")];
        let s = unary.size();
        let (h, w, labels) = (s[0] as usize, s[1] as usize, s[2] as usize);
        let beta = gco_edge_weight(floats(&f[&format!("beta.{k}")])[0]);
        let pb = GridProblem {
            height: h,
            width: w,
            labels,
            unary: floats(unary),
            pairwise: floats(&f[&format!("pairwise.{k}")]),
            beta,
        };
        let gco: Vec<usize> = Vec::<i64>::try_from(f[&format!("labels.{k}")].reshape([-1]))
            .unwrap()
            .into_iter()
            .map(|l| l as usize)
            .collect();
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
