//! TrainStep on plain buffers: shape errors, the NaN policy, loss decreases on a fixed batch,
//! the mixing hook.
use deda_nets::{BlockKind, ResNetConfig, ResNetModel};
use deda_train::{BatchRef, Error, LrSchedule, SgdConfig, TrainStep};
use tch::Device;

fn tiny() -> Box<ResNetModel> {
    let cfg = ResNetConfig {
        block: BlockKind::Basic,
        layers: [1, 1, 1, 1],
        num_classes: 3,
        width: 4,
    };
    Box::new(ResNetModel::new("tiny", cfg, Device::Cpu, 0).unwrap())
}

fn buffers(n: usize, s: usize, c: usize) -> (Vec<f32>, Vec<f32>) {
    let images = (0..n * 3 * s * s)
        .map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0)
        .collect();
    let mut targets = vec![0f32; n * c];
    for i in 0..n {
        targets[i * c + i % c] = 1.0;
    }
    (images, targets)
}

#[test]
fn loss_decreases_on_a_repeated_batch() {
    let sgd = SgdConfig {
        lr: 0.05,
        ..SgdConfig::default()
    };
    let mut t = TrainStep::new(tiny(), &sgd, LrSchedule::Constant { lr: 0.05 }, 0.0).unwrap();
    let (x, y) = buffers(6, 32, 3);
    let b = BatchRef {
        images: &x,
        targets: &y,
        n: 6,
        h: 32,
        w: 32,
        num_classes: 3,
    };
    let first = t.step(&b, 0).unwrap();
    let mut last = first;
    for _ in 0..15 {
        last = t.step(&b, 0).unwrap();
    }
    assert_eq!(last.step, 15);
    assert_eq!(t.step_index(), 16);
    assert!(
        last.loss < first.loss * 0.7,
        "{} -> {}",
        first.loss,
        last.loss
    );
}

#[test]
fn wrong_buffer_sizes_are_shape_errors() {
    let mut t = TrainStep::new(
        tiny(),
        &SgdConfig::default(),
        LrSchedule::Constant { lr: 0.01 },
        0.0,
    )
    .unwrap();
    let (x, y) = buffers(2, 16, 3);
    let b = BatchRef {
        images: &x[1..],
        targets: &y[1..],
        n: 2,
        h: 16,
        w: 16,
        num_classes: 3,
    };
    let msg = t.step(&b, 0).unwrap_err().to_string();
    assert!(msg.contains("images") && msg.contains("targets"), "{msg}");
}

#[test]
fn nan_loss_is_reported_with_its_step_and_no_update_happens() {
    let mut t = TrainStep::new(
        tiny(),
        &SgdConfig::default(),
        LrSchedule::Constant { lr: 0.01 },
        0.0,
    )
    .unwrap();
    let (mut x, y) = buffers(2, 16, 3);
    let b = BatchRef {
        images: &x,
        targets: &y,
        n: 2,
        h: 16,
        w: 16,
        num_classes: 3,
    };
    t.step(&b, 0).unwrap();
    let before = t.model().var_store().variables()["fc.weight"].copy();
    x[5] = f32::NAN;
    let b = BatchRef {
        images: &x,
        targets: &y,
        n: 2,
        h: 16,
        w: 16,
        num_classes: 3,
    };
    match t.step(&b, 0) {
        Err(Error::NonFiniteLoss { step, loss }) => {
            assert_eq!(step, 1);
            assert!(loss.is_nan());
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    assert_eq!(t.step_index(), 1);
    assert!(t.model().var_store().variables()["fc.weight"].equal(&before));
}

#[test]
fn schedule_sets_the_learning_rate_of_each_step() {
    let sched = LrSchedule::MultiStep {
        base_lr: 0.1,
        milestones: vec![1, 2],
        gamma: 0.1,
    };
    let mut t = TrainStep::new(tiny(), &SgdConfig::default(), sched, 0.1).unwrap();
    let (x, y) = buffers(2, 16, 3);
    let b = BatchRef {
        images: &x,
        targets: &y,
        n: 2,
        h: 16,
        w: 16,
        num_classes: 3,
    };
    let lrs: Vec<f64> = (0..3).map(|_| t.step(&b, 0).unwrap().lr).collect();
    assert!(
        (lrs[0] - 0.1).abs() < 1e-12
            && (lrs[1] - 0.01).abs() < 1e-12
            && (lrs[2] - 0.001).abs() < 1e-12
    );
}

#[test]
fn the_mixing_hook_mixes_what_the_step_feeds_and_is_seeded_by_epoch_and_step() {
    use deda_train::config::MethodConfig;
    let mixup = MethodConfig {
        name: deda_train::MethodName::Cutmix,
        alpha: Some(1.0),
        mix_prob: Some(1.0),
        ..MethodConfig::default()
    };
    let sched = LrSchedule::Constant { lr: 0.01 };
    let mut t = TrainStep::new(tiny(), &SgdConfig::default(), sched.clone(), 0.0)
        .unwrap()
        .with_mixing(mixup, 7);
    let (x, y) = buffers(4, 16, 3);
    let b = BatchRef {
        images: &x,
        targets: &y,
        n: 4,
        h: 16,
        w: 16,
        num_classes: 3,
    };
    let (xs, ts) = b.to_tensors(Device::Cpu).unwrap();
    let (mx, mt) = t.mix(&xs, &ts, 2).unwrap();
    assert!(
        !mx.equal(&xs) && !mt.equal(&ts),
        "CutMix with p = 1 left the batch as it was"
    );
    let (mx2, mt2) = t.mix(&xs, &ts, 2).unwrap();
    assert!(
        mx.equal(&mx2) && mt.equal(&mt2),
        "the same (epoch, step) mixes the same way"
    );
    let (mx3, _) = t.mix(&xs, &ts, 3).unwrap();
    assert!(!mx3.equal(&mx), "another epoch draws another mix");
    // The step itself trains on the mixed batch: its loss is the loss of (mx, mt).
    let mut plain = TrainStep::new(tiny(), &SgdConfig::default(), sched, 0.0).unwrap();
    let want = plain.update(&mx, &mt).unwrap().loss;
    let got = t.step(&b, 2).unwrap().loss;
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let (ux, ut) = plain.mix(&xs, &ts, 2).unwrap();
    assert!(ux.equal(&xs) && ut.equal(&ts), "no mixing without a hook");
}
