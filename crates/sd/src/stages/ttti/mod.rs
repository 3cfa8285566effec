//! Truncated-timestep textual inversion (TTTI, De-DA §3): one new token per class, initialised
//! from a super-class word, trained with the ε-prediction loss on timesteps drawn only from
//! `{0, ..., ⌊s·T⌋}` — the range the later SDEdit at strength `s` uses.
//!
//! Follows diffusers' `textual_inversion` example: AdamW (β 0.9/0.999, ε 1e-8, weight decay
//! 1e-2) over the input-embedding table, and every row but the placeholder's restored after
//! each step. Since AdamW is element-wise and the other rows are restored, this is exactly
//! AdamW on the placeholder's row alone, which is what [`AdamWRow`] does (the table is never
//! touched). A batch of `batch_size` samples is split into micro-batches whose gradients are
//! accumulated (loss scaled by their share of the batch).
//!
//! Parity: `tests/ttti_parity.rs` (gradient and two AdamW steps, fixture from
//! `tools/parity/make_pipeline_fixture.py`).
//!
//! The `deda invert` stage that runs it over a bank is [`stage`]; the files of learned tokens,
//! [`store`].
pub mod stage;
pub mod store;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use deda_edit::{ttti_max_timestep, ClipTokenizer, DdimScheduler};

use crate::error::{Error, Result};
use crate::models::clip_text::ClipTextModel;
use crate::models::layer_diffuse::transparent_vae::check_finite;
use crate::models::unet::UNet2DConditionModel;
use crate::pipelines::img2img::{encode_prompt, seeded_noise, LearnedToken};

/// The small prompt templates of textual inversion (`imagenet_templates_small`); `{}` is the
/// placeholder.
pub const TEMPLATES: [&str; 27] = [
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
];

/// TTTI hyper-parameters (De-DA: s = 0.4, 400 steps, batch 32, lr 1e-4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TttiConfig {
    /// SDEdit strength `s`: timesteps are drawn from `{0, ..., ⌊s·T⌋}`.
    pub strength: f64,
    /// Optimisation steps.
    pub steps: u32,
    /// Samples per optimisation step.
    pub batch_size: usize,
    /// Samples per forward/backward pass (gradients are accumulated up to `batch_size`).
    pub micro_batch: usize,
    /// AdamW settings.
    pub adamw: AdamWConfig,
}

impl Default for TttiConfig {
    fn default() -> Self {
        TttiConfig {
            strength: 0.4,
            steps: 400,
            batch_size: 32,
            micro_batch: 4,
            adamw: AdamWConfig::default(),
        }
    }
}

/// `torch.optim.AdamW` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f64,
    /// β₁, β₂.
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-4,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// AdamW on one tensor with `torch.optim.AdamW`'s update (no amsgrad): `p ← p·(1 − lr·wd)`,
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
#[derive(Debug)]
pub struct AdamWRow {
    cfg: AdamWConfig,
    m: Tensor,
    v: Tensor,
    step: i32,
}

impl AdamWRow {
    /// Zero moments for a parameter like `param`.
    pub fn new(param: &Tensor, cfg: AdamWConfig) -> Self {
        AdamWRow {
            cfg,
            m: param.zeros_like().detach(),
            v: param.zeros_like().detach(),
            step: 0,
        }
    }

    /// One update of `param` (in place, without recording gradients) with `grad`.
    pub fn step(&mut self, param: &mut Tensor, grad: &Tensor) {
        let c = self.cfg;
        self.step += 1;
        tch::no_grad(|| {
            let g = grad.to_kind(param.kind());
            self.m = &self.m * c.betas.0 + &g * (1.0 - c.betas.0);
            self.v = &self.v * c.betas.1 + (&g * &g) * (1.0 - c.betas.1);
            let bc1 = 1.0 - c.betas.0.powi(self.step);
            let bc2 = 1.0 - c.betas.1.powi(self.step);
            let decayed = &*param * (1.0 - c.lr * c.weight_decay);
            let denom = self.v.sqrt() / bc2.sqrt() + c.eps;
            let new = decayed - (&self.m / denom) * (c.lr / bc1);
            param.copy_(&new);
        });
    }
}

/// One micro-batch of TTTI samples.
#[derive(Debug)]
pub struct TiBatch<'a> {
    /// Scaled latents (N, 4, h, w).
    pub latents: &'a Tensor,
    /// Standard-normal noise of the same shape.
    pub noise: &'a Tensor,
    /// One timestep per sample.
    pub timesteps: &'a [i64],
    /// Prompt ids (N, 77) holding the placeholder.
    pub ids: &'a Tensor,
}

/// The models textual inversion runs through (frozen).
#[derive(Debug, Clone, Copy)]
pub struct TiModels<'a> {
    /// Text encoder.
    pub text: &'a ClipTextModel,
    /// UNet.
    pub unet: &'a UNet2DConditionModel,
}

/// The forward process of SD-1.5's DDPM schedule at per-sample timesteps:
/// `sqrt(ᾱ_t)·z + sqrt(1 − ᾱ_t)·ε` (diffusers' `DDPMScheduler.add_noise`), on `latents`'
/// device, f32. Shared by every textual-inversion objective (TTTI, DA-Fusion, Diff-Mix).
///
/// # Errors
/// [`Error::Input`] for a timestep outside `0..T`.
pub fn add_noise_at(latents: &Tensor, noise: &Tensor, timesteps: &[i64]) -> Result<Tensor> {
    let sched = DdimScheduler::sd15();
    let (mut a, mut b) = (
        Vec::with_capacity(timesteps.len()),
        Vec::with_capacity(timesteps.len()),
    );
    for &t in timesteps {
        let (sa, sb) = u32::try_from(t)
            .map_err(|_| Error::Input(format!("timestep {t} is negative")))
            .and_then(|t| {
                sched
                    .add_noise_coefficients(t)
                    .map_err(|e| Error::Input(e.to_string()))
            })?;
        a.push(sa);
        b.push(sb);
    }
    let device = latents.device();
    let col = |v: &[f32]| Tensor::from_slice(v).to_device(device).view([-1, 1, 1, 1]);
    Ok(latents * col(&a) + noise.to_device(device) * col(&b))
}

/// The ε-prediction loss `mse(unet(add_noise(z, ε, t), t, text(ids)), ε)` (mean, f32) of a
/// micro-batch, differentiable with respect to `learned.row`.
///
/// # Errors
/// [`Error::Input`] for mismatched sizes or timesteps outside `0..T`.
pub fn ti_loss(
    models: TiModels<'_>,
    batch: &TiBatch<'_>,
    learned: &LearnedToken,
) -> Result<Tensor> {
    let n = batch.latents.size().first().copied().unwrap_or(0);
    if batch.timesteps.len() as i64 != n || batch.noise.size() != batch.latents.size() {
        return Err(Error::Input(format!(
            "TTTI batch: {} timesteps and noise {:?} for latents {:?}",
            batch.timesteps.len(),
            batch.noise.size(),
            batch.latents.size()
        )));
    }
    let device = batch.latents.device();
    let noise = batch.noise.to_device(device).to_kind(Kind::Float);
    let noisy = add_noise_at(&batch.latents.to_kind(Kind::Float), &noise, batch.timesteps)?;
    let context = encode_prompt(models.text, batch.ids, Some(learned))?;
    let t = Tensor::from_slice(batch.timesteps).to_device(device);
    let eps = models
        .unet
        .forward(&noisy.to_kind(models.unet.kind()), &t, &context)?
        .to_kind(Kind::Float);
    Ok(eps.mse_loss(&noise, tch::Reduction::Mean))
}

/// Textual inversion of one class: the learned row, its optimiser and the step counter.
#[derive(Debug)]
pub struct TextualInversion {
    /// The placeholder and its row (a leaf that requires gradients).
    pub learned: LearnedToken,
    opt: AdamWRow,
    cfg: TttiConfig,
    max_t: u32,
    template_ids: Vec<Tensor>,
}

impl TextualInversion {
    /// Adds `placeholder` to `tokenizer`, initialises its row from `init_word` (which must be
    /// a single token of the text encoder's vocabulary) and prepares the prompts.
    ///
    /// # Errors
    /// [`Error::Input`] if the init word is not one token, [`Error::Config`] for a bad
    /// strength or batch sizes.
    pub fn new(
        text: &ClipTextModel,
        tokenizer: &mut ClipTokenizer,
        placeholder: &str,
        init_word: &str,
        cfg: TttiConfig,
    ) -> Result<Self> {
        let init = tokenizer.token_ids(init_word);
        let [init_id] = init.as_slice() else {
            return Err(Error::Input(format!(
                "the initializer word {init_word:?} must be a single token, got {} tokens",
                init.len()
            )));
        };
        let table = text.token_embedding();
        let vocab = table.size()[0];
        if i64::from(*init_id) >= vocab {
            return Err(Error::Input(format!(
                "the initializer word {init_word:?} (id {init_id}) is outside the text \
                 encoder's vocabulary of {vocab}"
            )));
        }
        let id = tokenizer
            .add_token(placeholder)
            .map_err(|e| Error::Input(e.to_string()))?;
        let init_row = table.get(i64::from(*init_id));
        let template_ids = TEMPLATES
            .iter()
            .map(|t| {
                let ids: Vec<i64> = tokenizer
                    .encode(&t.replace("{}", placeholder))
                    .into_iter()
                    .map(i64::from)
                    .collect();
                Tensor::from_slice(&ids).view([1, -1])
            })
            .collect();
        Self::from_parts(i64::from(id), &init_row, template_ids, cfg)
    }

    /// From prepared parts: the placeholder's id, its initial row (hidden,) and the (1, 77)
    /// prompt ids to draw from (benchmarks, or callers with their own tokenizer).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad strength, batch sizes or no prompts.
    pub fn from_parts(
        id: i64,
        init_row: &Tensor,
        template_ids: Vec<Tensor>,
        cfg: TttiConfig,
    ) -> Result<Self> {
        if cfg.batch_size == 0 || cfg.micro_batch == 0 || template_ids.is_empty() {
            return Err(Error::Config(
                "TTTI batch and micro-batch sizes must be > 0 and prompts given".into(),
            ));
        }
        let max_t = ttti_max_timestep(cfg.strength, DdimScheduler::sd15().num_train_timesteps())
            .map_err(|e| Error::Config(e.to_string()))?;
        let row = init_row
            .detach()
            .to_kind(Kind::Float)
            .copy()
            .set_requires_grad(true);
        Ok(TextualInversion {
            opt: AdamWRow::new(&row, cfg.adamw),
            learned: LearnedToken { id, row },
            cfg,
            max_t,
            template_ids,
        })
    }

    /// The largest timestep drawn (`⌊s·T⌋`).
    pub fn max_timestep(&self) -> u32 {
        self.max_t
    }

    /// Accumulates the gradient of one micro-batch whose loss weighs `share` of the step's
    /// batch; returns the micro-batch loss.
    ///
    /// # Errors
    /// As [`ti_loss`]; [`Error::Input`] if the loss is not finite.
    pub fn accumulate(
        &mut self,
        models: TiModels<'_>,
        batch: &TiBatch<'_>,
        share: f64,
    ) -> Result<f64> {
        let loss = ti_loss(models, batch, &self.learned)?;
        check_finite(&loss, "textual-inversion loss")?;
        (&loss * share).backward();
        Ok(loss.double_value(&[]))
    }

    /// Applies AdamW with the accumulated gradient and clears it; returns the gradient used.
    ///
    /// # Errors
    /// [`Error::Input`] if no gradient was accumulated.
    pub fn apply(&mut self) -> Result<Tensor> {
        let grad = self.learned.row.grad();
        if !grad.defined() {
            return Err(Error::Input(
                "no gradient accumulated for the learned token".into(),
            ));
        }
        let grad = grad.detach().copy();
        self.opt.step(&mut self.learned.row, &grad);
        self.learned.row.zero_grad();
        Ok(grad)
    }

    /// One optimisation step on samples drawn from `latents` (M, 4, h, w): `batch_size`
    /// indices, templates, timesteps in `0..=⌊s·T⌋` and noise from `seed`, in micro-batches.
    /// Returns the mean loss.
    ///
    /// # Errors
    /// As [`TextualInversion::accumulate`]; [`Error::Input`] for an empty latent set.
    pub fn train_step(&mut self, models: TiModels<'_>, latents: &Tensor, seed: u64) -> Result<f64> {
        let m = latents.size().first().copied().unwrap_or(0);
        if m == 0 {
            return Err(Error::Input(
                "textual inversion needs at least one CDP latent".into(),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bs = self.cfg.batch_size;
        let mut total = 0.0;
        let mut start = 0;
        while start < bs {
            let n = self.cfg.micro_batch.min(bs - start);
            let idx: Vec<i64> = (0..n).map(|_| rng.random_range(0..m)).collect();
            let ts: Vec<i64> = (0..n)
                .map(|_| i64::from(rng.random_range(0..=self.max_t)))
                .collect();
            let ids: Vec<Tensor> = (0..n)
                .map(|_| {
                    self.template_ids[rng.random_range(0..self.template_ids.len())].shallow_clone()
                })
                .collect();
            let z = latents.index_select(0, &Tensor::from_slice(&idx).to_device(latents.device()));
            let noise = seeded_noise(rng.random(), &z.size()).to_device(z.device());
            let ids = Tensor::cat(&ids, 0);
            let batch = TiBatch {
                latents: &z,
                noise: &noise,
                timesteps: &ts,
                ids: &ids,
            };
            total += self.accumulate(models, &batch, n as f64 / bs as f64)? * n as f64;
            start += n;
        }
        let _grad = self.apply()?;
        Ok(total / bs as f64)
    }

    /// The learned row (hidden_size,), detached, f32 on the CPU.
    pub fn embedding(&self) -> Tensor {
        self.learned.row.detach().to_device(tch::Device::Cpu).copy()
    }
}
