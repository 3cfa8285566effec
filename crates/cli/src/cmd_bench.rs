//! `deda bench`: one-line JSON timings of the training step, the combination path, the loader,
//! the SD editor's parts and the generative peers' generators.
use anyhow::{Context, Result};
use clap::Subcommand;
use deda_nets::DeviceChoice;
use std::path::PathBuf;

/// The benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The training step `deda train` runs (`deda_train::TrainStep`: forward, soft-label CE,
    /// backward, NaN check, SGD Nesterov with weight decay) on random images.
    TrainStep {
        /// resnet18 or resnet50.
        #[arg(long, default_value = "resnet18")]
        model: String,
        /// Image side in pixels.
        #[arg(long, default_value_t = 112)]
        size: i64,
        /// Batch size.
        #[arg(long, default_value_t = 16)]
        batch: i64,
        /// Timed steps (after 3 untimed ones).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// De-DA combinations (decode parts, compose, resize) per second from a part bank.
    Combine {
        /// Canvas side in pixels.
        #[arg(long, default_value_t = 448)]
        size: u32,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// The part bank folder.
        #[arg(long)]
        bank: PathBuf,
        /// Seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Batches from the training loader of a recipe, without a model: the loader `deda train`
    /// builds (its data set, transforms and, for De-DA, the part bank and combination).
    Loader {
        /// The recipe (TOML; see configs/).
        #[arg(long)]
        config: PathBuf,
        /// Epochs to run.
        #[arg(long, default_value_t = 1)]
        epochs: u64,
        /// Stop after this many batches.
        #[arg(long)]
        batches: Option<u64>,
        /// Override `[loader] threads`.
        #[arg(long)]
        threads: Option<usize>,
        /// Drop each batch instead of handing its buffers back to the loader (as before
        /// buffer recycling; for comparison).
        #[arg(long)]
        no_recycle: bool,
    },
    /// Transparent SDEdit (LayerDiffuse encode, CFG DDIM loop, 8-fold decode) on full-size
    /// SD-1.5 with random weights.
    Sdedit {
        /// Image side in pixels.
        #[arg(long, default_value_t = 512)]
        size: u32,
        /// DDIM steps of the full schedule (strength picks how many run).
        #[arg(long, default_value_t = 25)]
        steps: u32,
        /// SDEdit strength.
        #[arg(long, default_value_t = 0.4)]
        strength: f64,
        /// Timed edits (after 1 untimed).
        #[arg(long, default_value_t = 3)]
        iters: usize,
        /// Decode with one pass instead of the 8-fold median.
        #[arg(long)]
        no_augment: bool,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// fp16 or fp32.
        #[arg(long, default_value = "fp16")]
        dtype: String,
    },
    /// TTTI optimisation steps (text encoder + UNet forward/backward, AdamW on the token) on
    /// full-size SD-1.5 with random weights.
    TttiStep {
        /// Image side in pixels (latents are 1/8).
        #[arg(long, default_value_t = 512)]
        size: u32,
        /// Samples per step.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Samples per forward/backward pass.
        #[arg(long, default_value_t = 8)]
        micro_batch: usize,
        /// Timed steps (after 1 untimed).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// fp16 or fp32.
        #[arg(long, default_value = "fp16")]
        dtype: String,
    },
    /// Per-image generation of a generative peer through the generator `deda generate` builds
    /// (`[stages.generate] generator = "sd"`), and its CLIP scorer with --clip: median seconds
    /// per image on synthetic source images. DA-Fusion and Diff-Mix without --finetune get a
    /// stand-in fine-tuning folder made by one step of their real fine-tuning (tokens / LoRA of
    /// the right shapes, not trained: same generation cost).
    Generate(Box<GenerateBenchArgs>),
}

/// Arguments of `deda bench generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateBenchArgs {
    /// real-guidance, da-fusion, diff-mix or diffusemix.
    #[arg(long)]
    pub method: String,
    /// SD-1.5 weights (diffusers folder or hf:ORG/NAME); DiffuseMix: InstructPix2Pix's unless
    /// --ip2p is given.
    #[arg(long)]
    pub weights: PathBuf,
    /// InstructPix2Pix weights for diffusemix.
    #[arg(long)]
    pub ip2p: Option<PathBuf>,
    /// CLIP weights (transformers folder): times the `clip` scorer on each image too.
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// Diff-Mix's object word: the scorer's object_prob captions and the super-class word of
    /// its prompts (default "object").
    #[arg(long)]
    pub object: Option<String>,
    /// DA-Fusion / Diff-Mix fine-tuning folder (default: a stand-in, see above).
    #[arg(long)]
    pub finetune: Option<PathBuf>,
    /// CLIP BPE merges (default <weights>/tokenizer/merges.txt).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// fp32 or fp16: the generator's parameter dtype (`[stages.generate] dtype`).
    #[arg(long, default_value = "fp32")]
    pub dtype: String,
    /// Side the generator works at (default: the method's: 512, DiffuseMix 256).
    #[arg(long)]
    pub size: Option<u32>,
    /// Steps of the full schedule (default: the method's: 50, Diff-Mix 25, DiffuseMix 100).
    #[arg(long)]
    pub steps: Option<u32>,
    /// One img2img strength for every image (default: the method's set, one drawn per image).
    #[arg(long)]
    pub strength: Option<f64>,
    /// Side of the square synthetic source images.
    #[arg(long, default_value_t = 512)]
    pub source_size: u32,
    /// Timed images (after the warm-up ones).
    #[arg(long, default_value_t = 3)]
    pub images: usize,
    /// Untimed images first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Classes the sources alternate over (Diff-Mix translates to another one).
    #[arg(long, default_value_t = 2)]
    pub classes: usize,
    /// Seed of the plans and generations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `deda bench ...` and prints its JSON line on standard output.
pub fn run(c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand::TrainStep {
            model,
            size,
            batch,
            steps,
            device,
        } => {
            let choice: DeviceChoice = device
                .parse()
                .map_err(|e: deda_nets::Error| crate::UsageError(format!("--device: {e}")))?;
            let device = choice
                .resolve()
                .map_err(|e| crate::UsageError(format!("--device: {e}")))?;
            let r = deda_train::bench_train_step(&model, size, batch, steps, device)
                .context("benchmarking the training step")?;
            println!("{}", serde_json::to_string(&r)?);
        }
        BenchCommand::Combine {
            size,
            seconds,
            threads,
            bank,
            seed,
        } => {
            let r = deda_loader::bench_combine(&bank, size, seconds, threads, seed)
                .with_context(|| format!("benchmarking combinations from {}", bank.display()))?;
            println!("{}", r.json_line());
        }
        BenchCommand::Loader {
            config,
            epochs,
            batches,
            threads,
            no_recycle,
        } => {
            let r = bench_loader(&config, epochs, batches, threads, !no_recycle)
                .with_context(|| format!("benchmarking the loader of {}", config.display()))?;
            println!("{}", r.json_line());
        }
        BenchCommand::Sdedit {
            size,
            steps,
            strength,
            iters,
            no_augment,
            device,
            dtype,
        } => {
            let opts = crate::args::load_options(&device, &dtype)?;
            let cfg = deda_sd::pipelines::img2img::Img2ImgConfig {
                strength,
                steps,
                ..Default::default()
            };
            let r = deda_sd::stages::bench::bench_sdedit(opts, size, iters, cfg, !no_augment)
                .context("benchmarking transparent SDEdit")?;
            println!("{}", serde_json::to_string(&r)?);
        }
        BenchCommand::TttiStep {
            size,
            batch,
            micro_batch,
            steps,
            device,
            dtype,
        } => {
            let opts = crate::args::load_options(&device, &dtype)?;
            let r = deda_sd::stages::bench::bench_ttti_step(opts, size, batch, micro_batch, steps)
                .context("benchmarking the TTTI step")?;
            println!("{}", serde_json::to_string(&r)?);
        }
        BenchCommand::Generate(a) => {
            let line = bench_generate(&a)?;
            println!("{}", serde_json::to_string(&line)?);
        }
    }
    Ok(())
}

/// `deda bench generate`: the generator (and scorer) of `deda generate` from
/// `crate::stages::make_generator` / `make_scorer`, timed by `deda_sd::stages::bench`.
fn bench_generate(a: &GenerateBenchArgs) -> Result<serde_json::Value> {
    use deda_sd::stages::bench as b;
    use deda_train::MethodName as M;
    let method: M = a.method.parse().map_err(crate::UsageError)?;
    if !method.is_generative_peer() {
        return Err(crate::UsageError(format!(
            "--method {method}: expected real-guidance, da-fusion, diff-mix or diffusemix"
        ))
        .into());
    }
    if a.classes < 2 || a.images == 0 {
        return Err(crate::UsageError(
            "--classes must be at least 2 and --images at least 1".into(),
        )
        .into());
    }
    let weights = match (method, &a.ip2p) {
        (M::Diffusemix, Some(p)) => p.clone(),
        _ => a.weights.clone(),
    };
    let g = deda_train::stages::GenerateStage {
        generator: "sd".into(),
        k: 1,
        weights: Some(weights.clone()),
        strengths: a.strength.map(|s| vec![s]),
        tokenizer: a.tokenizer.clone(),
        steps: a.steps,
        size: a.size,
        scorer: if a.clip.is_some() { "clip" } else { "none" }.into(),
        clip: a.clip.clone(),
        // Diff-Mix's prompt needs a super-class word: the recipe's object (here "object"
        // unless given).
        object: a
            .object
            .clone()
            .or_else(|| (method == M::DiffMix).then(|| "object".to_string())),
        device: a.device.clone(),
        dtype: a.dtype.clone(),
        seed: a.seed,
        ..Default::default()
    };
    let mut problems = Vec::new();
    deda_train::stages::StagesConfig {
        decouple: None,
        sd: None,
        invert: None,
        edit: None,
        finetune: None,
        generate: Some(g.clone()),
    }
    .problems(&mut problems);
    if !problems.is_empty() {
        return Err(crate::UsageError(problems.join("; ")).into());
    }
    let class_names: Vec<String> = (0..a.classes).map(|c| format!("class {c}")).collect();
    let images = b::bench_source_images(a.warmup + a.images, a.source_size, a.seed);
    // DA-Fusion and Diff-Mix read a fine-tuning folder: the given one or a one-step stand-in.
    let scratch = tempfile::tempdir().context("creating a temporary folder")?;
    let (finetune, finetune_note) = match (&a.finetune, method) {
        (Some(dir), _) => (Some(dir.clone()), "given".to_string()),
        (None, M::DaFusion | M::DiffMix) => {
            let out = scratch.path().join("finetune");
            let spec = b::BenchFinetune {
                method: method.as_str(),
                weights: &weights,
                tokenizer: a.tokenizer.as_deref(),
                class_names: &class_names,
                super_class: g.object.as_deref().unwrap_or("object"),
                size: a.size.unwrap_or(a.source_size),
            };
            let started = std::time::Instant::now();
            b::bench_finetune_folder(
                &spec,
                &images,
                &out,
                crate::args::load_options(&a.device, "fp32")?,
            )
            .with_context(|| format!("making a stand-in {method} fine-tuning folder"))?;
            let note = format!(
                "stand-in: one step of the real fine-tuning ({:.1} s), not trained",
                started.elapsed().as_secs_f64()
            );
            (Some(out), note)
        }
        (None, _) => (None, "none".to_string()),
    };
    let started = std::time::Instant::now();
    let mut generator = crate::stages::make_generator(method, &g, finetune.as_deref())?;
    let mut scorer = crate::stages::make_scorer(&g)?;
    let load_s = started.elapsed().as_secs_f64();
    let r = b::bench_generate(
        generator.as_mut(),
        scorer
            .as_mut()
            .map(|s| s.as_mut() as &mut dyn deda_edit::ImageScorer),
        &images,
        &class_names,
        a.warmup,
        a.seed,
    )
    .with_context(|| format!("benchmarking the {method} generator"))?;
    let device = crate::args::load_options(&a.device, "fp32")?.device;
    let mut line = serde_json::to_value(&r)?;
    if let Some(o) = line.as_object_mut() {
        o.insert("device".into(), format!("{device:?}").into());
        o.insert("dtype".into(), a.dtype.clone().into());
        o.insert("size".into(), serde_json::json!(a.size));
        o.insert("steps".into(), serde_json::json!(a.steps));
        o.insert("strength".into(), serde_json::json!(a.strength));
        o.insert("load_s".into(), serde_json::json!(load_s));
        o.insert("finetune".into(), finetune_note.into());
        o.insert("scorer".into(), g.scorer.clone().into());
        o.insert("generator_config".into(), generator.config());
    }
    Ok(line)
}

/// The training loader of the recipe at `path`, built as `deda train` builds it, timed.
fn bench_loader(
    path: &std::path::Path,
    epochs: u64,
    batches: Option<u64>,
    threads: Option<usize>,
    recycle: bool,
) -> Result<deda_loader::bench::LoaderBenchReport> {
    let mut config = deda_train::TrainConfig::from_file(path)
        .map_err(|e| crate::UsageError(format!("{}: {e}", path.display())))?;
    if let Some(t) = threads {
        config.loader.threads = t;
    }
    let problems = config.problems();
    if !problems.is_empty() {
        let e = deda_train::RunError::Config { problems };
        return Err(crate::UsageError(format!("{}: {e}", path.display())).into());
    }
    let spec = crate::data_spec::parse(&config.data.dataset)?;
    let data = crate::pipeline::prepare_data(&config, &spec)?.data;
    let config = deda_train::trainer::resolve(&config);
    Ok(deda_loader::bench::bench_loader(
        config.loader,
        data.train,
        data.combiner,
        epochs,
        batches,
        recycle,
    )?)
}
