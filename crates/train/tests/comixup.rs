//! Co-Mixup: the optimisation lowers its objective, mixed targets are the area fractions of the
//! block assignment, mixed images copy the assigned inputs' blocks, and whole batches (several
//! partitions) mix with targets summing to 1.
use deda_core::{rng_for, Stream};
use deda_train::mixing::comixup::mask::{area_weights, mix_input};
use deda_train::mixing::comixup::objective::objective;
use deda_train::mixing::comixup::optimize::{optimise_partition, PartitionProblem};
use deda_train::mixing::comixup::{comixup_batch, sample_dirichlet, CoMixupParams};
use rand::Rng;
use tch::{Device, Kind, Tensor};

fn problem(seed: u64, n: usize, side: usize) -> PartitionProblem {
    let mut rng = rng_for(seed, Stream::Mix, &[2]);
    let hw = side * side;
    let mut cost = Vec::new();
    for _ in 0..n {
        let s: Vec<f64> = (0..hw)
            .map(|_| rng.random_range(0.0..1.0f64).powi(3))
            .collect();
        let total: f64 = s.iter().sum();
        cost.extend(s.iter().map(|v| -v / total));
    }
    let compat = (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect();
    PartitionProblem {
        n_input: n,
        height: side,
        width: side,
        cost,
        compat,
        prior: sample_dirichlet(&mut rng, 1.0, n).unwrap(),
        init: (0..n)
            .map(|_| (0..hw).map(|_| rng.random_range(0..n)).collect())
            .collect(),
    }
}

#[test]
fn optimisation_lowers_the_objective_and_keeps_valid_assignments() {
    let params = CoMixupParams::default();
    for seed in 0..4 {
        let pb = problem(seed, 5, 8);
        let res = optimise_partition(&pb, &params);
        let hw = 64.0;
        let init: Vec<Vec<f64>> = pb
            .init
            .iter()
            .map(|l| {
                let mut m = vec![0.0; 64 * 5];
                l.iter().enumerate().for_each(|(p, &j)| m[p * 5 + j] = 1.0);
                m
            })
            .collect();
        let (beta, gamma) = (params.m_beta / hw, params.m_gamma / hw);
        let before = objective(&res.cost_prior, &init, (5, 8, 8), beta, gamma);
        println!("seed {seed}: objective {before:.5} -> {:.5}", res.objective);
        assert!(res.objective < before, "seed {seed}");
        for m in &res.mask {
            for block in m.chunks(5) {
                assert!((block.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
        // Diversity: not every output is the same single input.
        let w = area_weights(&res.mask, 5);
        assert!(
            w.iter().any(|r| r != &w[0]),
            "seed {seed}: all outputs equal"
        );
    }
}

#[test]
fn mixed_targets_are_the_area_fractions_and_images_copy_assigned_blocks() {
    let params = CoMixupParams::default();
    let pb = problem(11, 4, 4);
    let res = optimise_partition(&pb, &params);
    let images = Tensor::rand([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let targets = Tensor::eye(4, (Kind::Float, Device::Cpu));
    let (x, t) = mix_input(&res.mask, (4, 4), &images, &targets).unwrap();
    let weights = area_weights(&res.mask, 4);
    for (o, row) in weights.iter().enumerate() {
        let got: Vec<f32> = Vec::try_from(t.get(o as i64)).unwrap();
        assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        for j in 0..4 {
            assert!(
                (got[j] as f64 - row[j]).abs() < 1e-6,
                "output {o} input {j}"
            );
        }
        // Each 2 × 2 pixel block is the assignment's mix of the inputs' pixels.
        for p in 0..16 {
            let (by, bx) = ((p / 4) as i64 * 2, (p % 4) as i64 * 2);
            let share = &res.mask[o][p * 4..(p + 1) * 4];
            let mut want = Tensor::zeros([3, 2, 2], (Kind::Float, Device::Cpu));
            for (j, s) in share.iter().enumerate() {
                let blk = images.get(j as i64).narrow(1, by, 2).narrow(2, bx, 2);
                want += blk * *s;
            }
            let have = x.get(o as i64).narrow(1, by, 2).narrow(2, bx, 2);
            let err = (have - want).abs().max().double_value(&[]);
            assert!(err < 1e-6, "output {o} block {p}: {err}");
        }
    }
}

#[test]
fn a_batch_of_several_partitions_mixes_with_targets_summing_to_one() {
    let params = CoMixupParams {
        m_part: 3,
        m_block_num: 2,
        ..CoMixupParams::default()
    };
    let images = Tensor::rand([7, 3, 16, 16], (Kind::Float, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0]);
    let targets = labels.one_hot(3).to_kind(Kind::Float);
    let raw = Tensor::rand([7, 16, 16], (Kind::Float, Device::Cpu));
    let mut rng = rng_for(5, Stream::Mix, &[0, 0]);
    let (x, t) = comixup_batch(&mut rng, &params, &images, &targets, &raw).unwrap();
    assert_eq!(x.size(), vec![7, 3, 16, 16]);
    assert_eq!(t.size(), vec![7, 3]);
    let sums = t.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    let err = (sums - 1.0).abs().max().double_value(&[]);
    assert!(err < 1e-6, "{err}");
    // The same draws give the same mix.
    let mut rng2 = rng_for(5, Stream::Mix, &[0, 0]);
    let (x2, _) = comixup_batch(&mut rng2, &params, &images, &targets, &raw).unwrap();
    assert!(x.equal(&x2));
    // Too small for the block grid: a clear error.
    let tiny = Tensor::rand([2, 3, 4, 4], (Kind::Float, Device::Cpu));
    let e = comixup_batch(
        &mut rng,
        &CoMixupParams::default(),
        &tiny,
        &targets.narrow(0, 0, 2),
        &tiny.mean_dim(1, false, Kind::Float),
    )
    .unwrap_err();
    assert!(e.to_string().contains("too small"), "{e}");
}

#[test]
fn a_full_size_partition_is_optimised_in_reasonable_time() {
    // The reference's defaults: 20 inputs on a 16 × 16 block grid.
    let pb = problem(21, 20, 16);
    let start = std::time::Instant::now();
    let res = optimise_partition(&pb, &CoMixupParams::default());
    let secs = start.elapsed().as_secs_f64();
    let used: Vec<usize> = area_weights(&res.mask, 20)
        .iter()
        .map(|r| r.iter().filter(|&&v| v > 0.0).count())
        .collect();
    println!("20 outputs on 16x16 blocks: {secs:.3} s, inputs per output {used:?}");
    assert!(secs < 20.0, "{secs} s");
    assert!(used.iter().all(|&u| u >= 1));
}
