//! Timing of the training step, comparable with `tools/bench_train_step.py` (PyTorch).
use std::time::Instant;

use serde::Serialize;
use tch::Device;

use crate::error::Result;
use crate::optim::step::{BatchRef, TrainStep};
use crate::optim::{LrSchedule, SgdConfig};

/// Classes of the benchmark head (CUB-200).
pub const BENCH_CLASSES: usize = 200;
/// Untimed steps before timing.
pub const WARMUP_STEPS: usize = 3;

/// The result line of one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchResult {
    /// Always `train_step`.
    pub op: String,
    /// Architecture name.
    pub model: String,
    /// Image side.
    pub size: i64,
    /// Batch size.
    pub batch: i64,
    /// Median seconds per step over the timed steps.
    pub median_s: f64,
    /// Device name (`cpu`, `cuda:0`).
    pub device: String,
    /// Intra-op threads of libtorch.
    pub threads: i32,
    /// Timed steps.
    pub steps: usize,
}

/// Median of the values (mean of the middle two for an even count); 0 for none.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => 0.5 * (values[n / 2 - 1] + values[n / 2]),
    }
}

/// Times `steps` full training steps of `model` from scratch: the [`TrainStep`] that
/// [`crate::fit`] runs (buffers → device, forward, soft-label CE, backward, NaN check, the
/// [`crate::MomentumSgd`] update, Nesterov with weight decay; no batch mixing), on random
/// `size`² images, after [`WARMUP_STEPS`] untimed ones. Each step ends by reading the loss,
/// which synchronises the device.
pub fn bench_train_step(
    model: &str,
    size: i64,
    batch: i64,
    steps: usize,
    device: Device,
) -> Result<BenchResult> {
    let net = deda_nets::build(model, BENCH_CLASSES as i64, device, 0)?;
    let sgd = SgdConfig::default();
    let mut trainer = TrainStep::new(net, &sgd, LrSchedule::Constant { lr: sgd.lr }, 0.0)?;
    let (n, s) = (batch.max(1) as usize, size.max(1) as usize);
    let images: Vec<f32> = (0..n * 3 * s * s)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut targets = vec![0f32; n * BENCH_CLASSES];
    for i in 0..n {
        targets[i * BENCH_CLASSES + (i * 37) % BENCH_CLASSES] = 1.0;
    }
    let b = BatchRef {
        images: &images,
        targets: &targets,
        n,
        h: s,
        w: s,
        num_classes: BENCH_CLASSES,
    };
    for _ in 0..WARMUP_STEPS {
        trainer.step(&b, 0)?;
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t0 = Instant::now();
        trainer.step(&b, 0)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(BenchResult {
        op: "train_step".into(),
        model: model.to_string(),
        size,
        batch,
        median_s: median(&mut times),
        device: deda_nets::device::device_name(device),
        threads: tch::get_num_threads(),
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
