//! Prints one JSON line with the median time of a ResNet training step.
//!
//! `cargo run --release -p deda-train --example bench_train_step -- [model] [size] [batch] [steps] [device]`
//! (defaults: resnet18 112 16 10 auto). Compare with `tools/bench_train_step.py`.
use deda_nets::DeviceChoice;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let model = arg(0, "resnet18");
    let size: i64 = arg(1, "112").parse()?;
    let batch: i64 = arg(2, "16").parse()?;
    let steps: usize = arg(3, "10").parse()?;
    let device = arg(4, "auto").parse::<DeviceChoice>()?.resolve()?;
    let r = deda_train::bench_train_step(&model, size, batch, steps, device)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
