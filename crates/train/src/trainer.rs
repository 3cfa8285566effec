//! The training loop: [`fit`] trains, evaluates, logs and checkpoints one run.
//!
//! Per epoch: the training loader's batches (random crop and flip, with De-DA combinations when
//! the method is `deda`), batch-level mixing on the tensors for the batch-mixing methods (see
//! [`crate::mixing::batch_mix`]; one RNG per step from `rng_for(seed, Stream::Mix, [epoch, step])`),
//! one SGD step each; then every
//! `eval_every` epochs (and after the last) an evaluation on the test split (centre crop). A
//! record goes to `metrics.jsonl`/`metrics.csv` and a checkpoint is written, so `--resume`
//! continues after the last finished epoch and reproduces the uninterrupted run.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use deda_core::Stream;
use deda_loader::{Batch, Combiner, Loader, SampleSource};
use deda_nets::{DeviceChoice, Family, Model, ModelName, ModelSpec, ResNetConfig, ResNetModel};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::{MethodName, TrainConfig};
use crate::error::{RunError, RunResult};
use crate::evaluation::{after_epoch, evaluate, EvalReport};
use crate::optim::loss::SmoothingForm;
use crate::optim::step::{BatchRef, StepOutcome, TrainStep};
use crate::run::checkpoint::{self, TrainState};
use crate::run::metrics::{EpochRecord, MetricsLog};
use crate::run::run_dir::{collect_provenance, input_changes, recorded_inputs, RunDir};

/// The data of a run, prepared by the caller (data-set reading, k-shot and the part bank live
/// outside this crate).
pub struct TrainData {
    /// Training samples.
    pub train: Arc<dyn SampleSource>,
    /// Test samples.
    pub test: Arc<dyn SampleSource>,
    /// Class names, indexed by class id.
    pub class_names: Vec<String>,
    /// Group id of each test sample (Waterbirds), indexed like `test`.
    pub test_groups: Option<Vec<Option<u8>>>,
    /// Group names, indexed by group id.
    pub group_names: Vec<String>,
    /// The De-DA combiner for method `deda`.
    pub combiner: Option<Combiner>,
    /// The generative peer's generated images and rule (methods `real-guidance`, `da-fusion`,
    /// `diff-mix`, `diffusemix`; see [`crate::peers`]).
    pub peers: Option<deda_loader::Peers>,
    /// Hashes of inputs for the provenance record (e.g. `bank_manifest`).
    pub inputs: BTreeMap<String, String>,
}

/// How [`fit`] starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FitOptions {
    /// Continue from `checkpoints/state.json` instead of starting afresh.
    pub resume: bool,
    /// Stop (with a checkpoint) once this many epochs of the run are done, as if interrupted;
    /// None runs to `train.epochs`.
    pub stop_after: Option<usize>,
}

/// One finished step, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Epoch.
    pub epoch: usize,
    /// Batch within the epoch.
    pub batch: usize,
    /// Global iteration index.
    pub step: usize,
    /// Loss of the batch.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Samples in the batch.
    pub samples: usize,
}

/// Receives progress; every method does nothing by default.
pub trait FitObserver {
    /// An epoch of `batches` batches starts.
    fn epoch_start(&mut self, _epoch: usize, _batches: usize) {}
    /// A step finished.
    fn step(&mut self, _info: &StepInfo) {}
    /// An epoch finished (and was evaluated if the record has a top-1).
    fn epoch_end(&mut self, _record: &EpochRecord) {}
    /// The first batch this call of [`fit`] feeds to the network, after batch mixing
    /// (normalised images, as the network sees them).
    fn first_batch(&mut self, _batch: &Batch) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl FitObserver for Silent {}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Epochs of the recipe.
    pub epochs: usize,
    /// Epochs this call ran (fewer after a resume).
    pub epochs_run: usize,
    /// Iterations done.
    pub steps: usize,
    /// Mean training loss of the last epoch.
    pub final_train_loss: f64,
    /// Top-1 of the last evaluation.
    pub last_top1: Option<f64>,
    /// Best top-1 (the paper's reported number) and its epoch.
    pub best_top1: Option<f64>,
    /// Epoch of the best top-1.
    pub best_epoch: Option<usize>,
    /// The last evaluation in full.
    pub last_eval: Option<EvalReport>,
    /// Every epoch's record, from the first epoch of the run.
    pub records: Vec<EpochRecord>,
    /// The device trained on.
    pub device: String,
    /// Wall-clock seconds of this call.
    pub seconds: f64,
}

/// The config with the run seed applied everywhere (the loader's seed is the run's seed), and
/// for an `imagefolder` of class folders the test split it holds out written out
/// (`[data.hold_out]`, default 0.2 and seed 0 when absent), so `config.resolved.toml` records it.
pub fn resolve(config: &TrainConfig) -> TrainConfig {
    let mut c = config.clone();
    c.loader.seed = c.train.seed;
    if c.data.hold_out.is_none() && c.data.spec().is_ok_and(|s| s.holds_out().unwrap_or(false)) {
        c.data.hold_out = Some(deda_data::HoldOut::default());
    }
    c
}

/// `config` with the loader's execution settings (`loader.threads`, `loader.prefetch_batches`)
/// at their defaults. Batch `b` of an epoch is the same whatever the number of workers and the
/// prefetch depth (every random choice is derived from the seed, the epoch and the sample, see
/// [`deda_loader`]), so neither the config hash nor the recipe written into the weight files
/// depends on them: the same recipe and seed give byte-identical checkpoints with 1 or 8
/// workers, and a run may resume with another worker count. `config.resolved.toml` keeps them.
pub fn recipe_of_results(config: &TrainConfig) -> TrainConfig {
    let mut c = config.clone();
    let defaults = deda_loader::LoaderConfig::default();
    c.loader.threads = defaults.threads;
    c.loader.prefetch_batches = defaults.prefetch_batches;
    c
}

/// Hash of the parts of the config that change results: [`recipe_of_results`] without the
/// device and libtorch's thread count, so a run may resume elsewhere (a CPU run resumed with
/// another `torch_threads` continues correctly but not bit for bit, see [`torch_threads_for`]).
/// A recipe with the default loader threads hashes as it did before they were left out.
pub fn config_hash(config: &TrainConfig) -> RunResult<String> {
    let mut c = recipe_of_results(config);
    c.train.device = String::new();
    c.train.torch_threads = 0;
    Ok(deda_core::hash::config_hash(&c.to_toml()?))
}

/// libtorch's intra-op thread count before any run of this process changed it: what
/// `train.torch_threads = 0` means.
static DEFAULT_TORCH_THREADS: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Sets libtorch's intra-op threads for a run of `train.torch_threads = requested` and returns
/// the count in force: `requested`, or for 0 libtorch's own default (one per core, or
/// `OMP_NUM_THREADS`) as it was before any run of this process set it. The setting is
/// process-wide, so without restoring the default a `torch_threads = 0` run would inherit the
/// count of whichever run came before it in the same process (`deda experiment`,
/// `deda reproduce`), and its numbers would depend on that order.
///
/// On CPU the count changes results: oneDNN's convolution weight gradient splits the batch
/// over the threads and sums the partial gradients, so 1, 2 or 16 threads differ in the last
/// bits of the first step, and a small network trained from scratch ends several points of
/// accuracy apart. The same count (same libtorch, same CPU kernels) gives the same bytes; it is
/// recorded in `provenance.json` (`torch_threads`) and set a recipe's `torch_threads` to make
/// its numbers independent of the machine's core count.
pub fn torch_threads_for(requested: i32) -> i32 {
    let default = *DEFAULT_TORCH_THREADS.get_or_init(tch::get_num_threads);
    let want = if requested > 0 { requested } else { default };
    if tch::get_num_threads() != want {
        tch::set_num_threads(want);
    }
    want
}

/// Builds the network of `[model]` for `num_classes` classes.
pub fn build_model(
    config: &TrainConfig,
    num_classes: usize,
    device: Device,
) -> RunResult<Box<dyn Model>> {
    let arch: ModelName = config.model.name.parse()?;
    let (n, seed) = (num_classes as i64, config.train.seed);
    let mut model: Box<dyn Model> = match arch.family() {
        Family::ResNet => {
            let mut rc: ResNetConfig = arch.config(n);
            rc.width = config.model.width;
            if let Some(layers) = config.model.layers {
                rc.layers = layers;
            }
            Box::new(ResNetModel::new(arch.as_str(), rc, device, seed)?)
        }
        // A ViT's position embedding follows the crop it is fed.
        _ => ModelSpec::new(arch.as_str(), n)?
            .with_image_size(i64::from(config.loader.crop))
            .build(device, seed)?,
    };
    if let Some(path) = &config.model.pretrained {
        let skip: Vec<&str> = config
            .model
            .skip_prefixes
            .iter()
            .map(String::as_str)
            .collect();
        let report = if skip.is_empty() {
            model.load_pretrained(path)?
        } else {
            model.load_safetensors_skipping(path, &skip)?
        };
        if !report.skipped.is_empty() {
            eprintln!(
                "pretrained {}: kept fresh (not loaded): {}",
                path.display(),
                report.skipped.join(", ")
            );
        }
    }
    Ok(model)
}

/// Whether the recipe's network draws from libtorch's global generator in training:
/// EfficientNet-Lite (dropout and drop-connect, 0.2 each). ResNet, DenseNet (drop rate 0) and
/// ViT (dropout 0) draw nothing.
///
/// For such a network [`fit`] reseeds the global generator before every step from
/// `(seed, Stream::Network, [step])`, so the dropout masks of step `s` are the same whether
/// the run went straight through or was resumed (after a resume the generator would otherwise
/// continue from the state the model's initialisation left, not from where the run stopped)
/// and whatever else used the generator before. Networks that draw nothing are left alone, so
/// that a run does not reseed the generator under another thread building a model.
pub fn draws_in_training(config: &TrainConfig) -> bool {
    config
        .model
        .name
        .parse::<ModelName>()
        .is_ok_and(|arch| arch.family() == Family::EfficientNetLite)
}

/// Trains one run in `run_dir`; see the module docs.
pub fn fit(
    config: &TrainConfig,
    data: TrainData,
    run_dir: &Path,
    options: FitOptions,
    observer: &mut dyn FitObserver,
) -> RunResult<RunSummary> {
    let t0 = Instant::now();
    let config = resolve(config);
    config.validate()?;
    check_data(&config, &data)?;
    let torch_threads = torch_threads_for(config.train.torch_threads);
    let device = config.train.device.parse::<DeviceChoice>()?.resolve()?;
    let dir = RunDir::new(run_dir);
    let hash = config_hash(&config)?;
    let mut train_loader = Loader::new(
        config.loader.clone(),
        Arc::clone(&data.train),
        data.combiner,
    )?;
    if let Some(peers) = data.peers {
        train_loader = train_loader.with_peers(peers);
    }
    let iters = train_loader.num_batches();
    if iters == 0 {
        // Refused before the run folder is touched: an empty epoch logs no loss and a run
        // made of them could never be resumed.
        return Err(RunError::Config {
            problems: vec![format!(
                "every epoch would be empty: {} training samples, loader.batch_size {} with \
                 loader.drop_last = {} gives 0 batches (lower batch_size or set drop_last = false; \
                 a final batch below loader.min_last_batch = {} samples is dropped too)",
                data.train.len(),
                config.loader.batch_size,
                config.loader.drop_last,
                config.loader.min_last_batch
            )],
        });
    }
    let state = prepare_dir(&dir, &config, &hash, &data.inputs, options)?;
    if options.resume && device == Device::Cpu {
        let started = crate::run::run_dir::recorded_torch_threads(&dir.provenance());
        if let Some(t) = started.filter(|&t| t != torch_threads) {
            eprintln!(
                "resuming {} with {torch_threads} libtorch thread(s); it started with {t}: it \
                 continues correctly but not bit for bit as an uninterrupted run (set \
                 train.torch_threads = {t} for that)",
                dir.root().display()
            );
        }
    }
    let eval_loader = Loader::new(config.loader.for_eval(), Arc::clone(&data.test), None)?;
    let schedule = config
        .optim
        .schedule
        .resolve(config.optim.lr, iters, config.train.epochs)?;
    let model = build_model(&config, data.train.num_classes(), device)?;
    // Diff-Mix smooths every label in its own form (`LabelSmoothingLoss`), with its own ε.
    let peer = config.method.peer_settings(config.data.k_shot.is_some());
    let (smoothing, form) = match &peer {
        Some(p) if p.method == MethodName::DiffMix => (p.label_smoothing, SmoothingForm::DiffMix),
        _ => (config.train.label_smoothing, SmoothingForm::Uniform),
    };
    let mut trainer = TrainStep::new(model, &config.optim.sgd(), schedule, smoothing)?
        .with_smoothing_form(form)
        .with_mixing(config.method.clone(), config.train.seed)
        .with_loss(config.resolved_loss());

    let log = MetricsLog::new(dir.root());
    let mut state = match state {
        Some(s) => {
            checkpoint::restore(&dir, &s, &mut trainer)?;
            log.truncate_to(s.epochs_done)?;
            s
        }
        None => {
            log.truncate_to(0)?;
            TrainState {
                epochs_done: 0,
                step: 0,
                best_top1: None,
                best_epoch: None,
                config_hash: hash.clone(),
                weights_sha256: String::new(),
                momentum_sha256: String::new(),
            }
        }
    };
    let meta =
        checkpoint::checkpoint_metadata(&recipe_of_results(&config).to_toml()?, &data.class_names)?;
    let mut prov = collect_provenance(config.train.seed, device, hash, options.resume);
    prov.inputs = data.inputs.clone();
    let prov_path = match options.resume {
        false => dir.provenance(),
        true => dir
            .root()
            .join(format!("provenance.resume-{}.json", state.epochs_done)),
    };
    prov.write(&prov_path)?;

    trainer.set_step_index(state.step);
    let mut loop_ = Loop {
        trainer: &mut trainer,
        dir: &dir,
        observer,
        first_batch_sent: false,
        network_seed: draws_in_training(&config).then_some(config.train.seed),
    };
    let start_epoch = state.epochs_done;
    let mut last_eval = None;
    let mut final_loss = f64::NAN;
    let end_epoch = options
        .stop_after
        .map_or(config.train.epochs, |s| s.min(config.train.epochs));
    for epoch in start_epoch..end_epoch {
        let te = Instant::now();
        loop_.observer.epoch_start(epoch, iters);
        let pass = loop_.train_epoch(&train_loader, epoch)?;
        state.step = pass.step;
        final_loss = pass.mean_loss;
        let evaluate_now =
            (epoch + 1) % config.train.eval_every == 0 || epoch + 1 == config.train.epochs;
        let eval = if evaluate_now {
            Some(
                evaluate(
                    loop_.trainer.model(),
                    &eval_loader,
                    data.test_groups.as_deref(),
                )
                .map_err(|e| after_epoch(e, epoch, data.test.as_ref(), &data.class_names))?,
            )
        } else {
            None
        };
        if let Some(e) = &eval {
            if state.best_top1.is_none_or(|b| e.top1 > b) {
                state.best_top1 = Some(e.top1);
                state.best_epoch = Some(epoch);
                checkpoint::save_weights(loop_.trainer.model(), &dir.best_weights(), &meta)?;
            }
        }
        state.epochs_done = epoch + 1;
        let record = EpochRecord {
            epoch,
            step: state.step,
            train_loss: pass.mean_loss,
            lr: pass.last_lr,
            top1: eval.as_ref().map(|e| e.top1),
            best_top1: state.best_top1,
            best_epoch: state.best_epoch,
            mean_class_acc: eval.as_ref().and_then(|e| e.mean_class_acc),
            worst_group_acc: eval.as_ref().and_then(|e| e.worst_group_acc),
            group_acc: eval.as_ref().and_then(|e| e.per_group.clone()),
            map: eval.as_ref().and_then(|e| e.map),
            seconds: te.elapsed().as_secs_f64(),
            data_wait_fraction: pass.wait_fraction,
            combined: pass.combined,
            bad_samples: pass.bad,
        };
        log.append(&record)?;
        checkpoint::save(&dir, loop_.trainer, &state, &meta)?;
        if eval.is_some() {
            last_eval = eval;
        }
        loop_.observer.epoch_end(&record);
    }
    let records = log.read()?;
    if last_eval.is_none() && !records.is_empty() {
        // A resume after the last epoch: evaluate the final weights again.
        let epoch = records.len().saturating_sub(1);
        last_eval = Some(
            evaluate(trainer.model(), &eval_loader, data.test_groups.as_deref())
                .map_err(|e| after_epoch(e, epoch, data.test.as_ref(), &data.class_names))?,
        );
    }
    if final_loss.is_nan() {
        final_loss = records.last().map_or(f64::NAN, |r| r.train_loss);
    }
    Ok(RunSummary {
        epochs: config.train.epochs,
        epochs_run: end_epoch.saturating_sub(start_epoch),
        steps: state.step,
        final_train_loss: final_loss,
        last_top1: last_eval.as_ref().map(|e| e.top1),
        best_top1: state.best_top1,
        best_epoch: state.best_epoch,
        last_eval,
        records,
        device: deda_nets::device::device_name(device),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn check_data(config: &TrainConfig, data: &TrainData) -> RunResult<()> {
    let mut p = Vec::new();
    if data.train.is_empty() {
        p.push("the training split has no sample".to_string());
    }
    if data.test.is_empty() {
        p.push("the test split has no sample".to_string());
    }
    if data.train.num_classes() != data.test.num_classes() {
        p.push(format!(
            "train has {} classes, test {}",
            data.train.num_classes(),
            data.test.num_classes()
        ));
    }
    match (
        config.method.name.is_generative_peer(),
        data.peers.is_some(),
    ) {
        (true, false) => p.push(format!(
            "method {} needs its generated images (the part bank)",
            config.method.name
        )),
        (false, true) => p.push(format!(
            "generated images were given for method {}",
            config.method.name
        )),
        _ => {}
    }
    match (config.method.name, data.combiner.is_some()) {
        (MethodName::Deda, false) => p.push("method deda needs a combiner (the part bank)".into()),
        (m, true) if m != MethodName::Deda => {
            p.push(format!("a combiner was given for method {m}"))
        }
        _ => {}
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(RunError::Config { problems: p })
    }
}

/// Creates the run directory (removing temporaries of interrupted writers); returns the state
/// to resume from, if resuming. A resume is refused when the config or an input (the part
/// bank's manifest) differs from what the run started with.
fn prepare_dir(
    dir: &RunDir,
    config: &TrainConfig,
    hash: &str,
    inputs: &BTreeMap<String, String>,
    options: FitOptions,
) -> RunResult<Option<TrainState>> {
    dir.create()?;
    dir.remove_stale_temporaries()?;
    let existing = checkpoint::read_state(dir)?;
    let resume_err = |reason: String| RunError::Resume {
        dir: dir.root().to_path_buf(),
        reason,
    };
    match (options.resume, existing) {
        (true, None) => Err(resume_err("no checkpoints/state.json".into())),
        (true, Some(s)) if s.config_hash != hash => Err(resume_err(format!(
            "the config differs from the one the run started with (hash {} vs {hash}); see config.resolved.toml",
            s.config_hash
        ))),
        (true, Some(s)) => {
            let recorded = recorded_inputs(&dir.provenance())
                .map_err(|e| resume_err(format!("cannot check its inputs: {e}")))?;
            let changes = input_changes(&recorded, inputs);
            if !changes.is_empty() {
                return Err(resume_err(format!(
                    "its inputs changed since it started (sha256 recorded in provenance.json):\n  - {}\n\
                     resume with the original inputs, or start a new run folder",
                    changes.join("\n  - ")
                )));
            }
            Ok(Some(s))
        }
        (false, Some(s)) => Err(resume_err(format!(
            "it already holds a run ({} epochs done); pass --resume to continue it or choose another folder",
            s.epochs_done
        ))),
        (false, None) => {
            deda_core::atomic::write_atomic(&dir.config(), config.to_toml()?.as_bytes())?;
            Ok(None)
        }
    }
}

/// What one training pass over an epoch produced.
struct EpochPass {
    step: usize,
    mean_loss: f64,
    last_lr: f64,
    wait_fraction: f64,
    combined: usize,
    bad: usize,
}

/// The state the epoch loop borrows.
struct Loop<'a> {
    trainer: &'a mut TrainStep,
    dir: &'a RunDir,
    observer: &'a mut dyn FitObserver,
    first_batch_sent: bool,
    /// The run seed when the network draws from libtorch's global generator in training.
    network_seed: Option<u64>,
}

impl Loop<'_> {
    fn train_epoch(&mut self, loader: &Loader, epoch: usize) -> RunResult<EpochPass> {
        let t_epoch = Instant::now();
        let mut wait = 0.0;
        let mut last_lr = self.trainer.lr_at(self.trainer.step_index());
        let (mut loss_sum, mut batches) = (0.0, 0usize);
        let mut it = loader.epoch(epoch as u64)?;
        for b in 0.. {
            let tw = Instant::now();
            let next = it.next();
            wait += tw.elapsed().as_secs_f64();
            let Some(batch) = next else { break };
            let batch = batch?;
            let out = self.train_step(&batch, epoch, b)?;
            self.observer.step(&StepInfo {
                epoch,
                batch: b,
                step: out.step,
                loss: out.loss,
                lr: out.lr,
                samples: batch.n,
            });
            // The step copied the batch into tensors: its buffers go back to the workers.
            loader.recycle(batch);
            loss_sum += out.loss;
            batches += 1;
            last_lr = out.lr;
        }
        let total = t_epoch.elapsed().as_secs_f64();
        let stats = it.stats();
        Ok(EpochPass {
            step: self.trainer.step_index(),
            mean_loss: if batches > 0 {
                loss_sum / batches as f64
            } else {
                f64::NAN
            },
            last_lr,
            wait_fraction: if total > 0.0 { wait / total } else { 0.0 },
            combined: stats.combined,
            bad: stats.bad,
        })
    }

    /// One [`TrainStep`]: mixing, then the update; the first batch fed goes to the observer,
    /// and a non-finite loss names the batch's samples.
    fn train_step(&mut self, batch: &Batch, epoch: usize, b: usize) -> RunResult<StepOutcome> {
        let view = BatchRef {
            images: &batch.images,
            targets: &batch.targets,
            n: batch.n,
            h: batch.h,
            w: batch.w,
            num_classes: batch.num_classes,
        };
        let (x, t) = view.to_tensors(self.trainer.model().device())?;
        if let Some(seed) = self.network_seed {
            let step = self.trainer.step_index() as u64;
            tch::manual_seed(deda_core::rng::derive_key(seed, Stream::Network, &[step]) as i64);
        }
        let (x, t) = self.trainer.mix(&x, &t, epoch)?;
        if !self.first_batch_sent {
            self.first_batch_sent = true;
            self.observer.first_batch(&fed_batch(batch, &x, &t)?);
        }
        self.trainer.update(&x, &t).map_err(|e| match e {
            crate::Error::NonFiniteLoss { step, loss } => RunError::NonFiniteLoss {
                step,
                epoch,
                batch: b,
                indices: batch.indices.clone(),
                loss,
                checkpoint: self.dir.checkpoints(),
            },
            other => other.into(),
        })
    }
}

/// `batch` with the images and targets actually fed to the network.
fn fed_batch(batch: &Batch, x: &Tensor, t: &Tensor) -> RunResult<Batch> {
    let host = |v: &Tensor| -> RunResult<Vec<f32>> {
        let flat = v
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .view([-1]);
        Ok(Vec::<f32>::try_from(&flat).map_err(crate::Error::tch("batch to host"))?)
    };
    Ok(Batch {
        images: host(x)?,
        targets: host(t)?,
        ..batch.clone()
    })
}
