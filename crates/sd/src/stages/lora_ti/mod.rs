//! Diff-Mix's fine-tuning (`Zhicaiwww/Diff-Mix: train_lora.py`, `scripts/finetune.sh`): one
//! textual-inversion token per class learnt jointly with a LoRA on every UNet attention
//! projection ([`crate::models::lora`]), with the ε-prediction loss on timesteps drawn from the
//! whole range `[0, T)`.
//!
//! Per step (`train_lora.py`): a batch of real images with the prompt
//! `"a photo of a <class> <super-class>"`, latents `vae.encode(x).latent_dist.sample() ·
//! scaling_factor`, `t ~ U{0, …, 999}`, loss `mse(unet(add_noise(z, ε, t), t, text(ids)), ε)`;
//! `clip_grad_norm_` of the LoRA parameters to `max_grad_norm`; one AdamW over two groups (LoRA
//! at `lr`, the input-embedding table at `ti_lr`; betas 0.9/0.999, ε 1e-8, weight decay 1e-2);
//! every table row but the placeholders' restored after the step. AdamW being element-wise, that
//! is AdamW on the placeholder rows alone, which is what [`JointTrainer`] does (the table is
//! never touched); every class's row is updated each step (weight decay, and moments once it
//! has had a gradient), as in the reference.
//!
//! Differences from the reference, on purpose: f32 instead of fp16 mixed precision; the
//! placeholders are the TTTI store's (`<001-black-footed-albatross>`, see
//! [`crate::stages::ttti::store`]) instead of `<class_{i}>` — a token's string does not change
//! the computation, and the token files are then the ones the TTTI stage writes; randomness
//! from derived ChaCha8 streams ([`stage`]).
//!
//! Parity: `tests/lora_parity.rs` (two steps against diffusers 0.35.2 + peft, fixture
//! `tools/parity/make_lora_fixture.py`). The stage over a run's images, its checkpoints and
//! files: [`stage`].
pub mod stage;

use tch::{Device, Kind, Tensor};

use crate::stages::ttti::add_noise_at;

use crate::error::{Error, Result};
use crate::models::clip_text::ClipTextModel;
use crate::models::layer_diffuse::transparent_vae::check_finite;
use crate::models::lora::{LoraWeights, TrainableLora, DEFAULT_RANK};
use crate::models::unet::UNet2DConditionModel;

/// Diff-Mix's initializer token id (`INITIALIZER_TOKEN = 42170` in `train_lora.py`).
pub const DIFFMIX_INIT_TOKEN: i64 = 42170;

/// Diff-Mix's prompt (`IMAGENET_TEMPLATES_TINY`); `{}` becomes `"<placeholder> <super-class>"`.
pub const DIFFMIX_TEMPLATE: &str = "a photo of a {}";

/// Hyper-parameters of the joint fine-tuning. Defaults: Diff-Mix's README command
/// (`--resolution=224 --train_batch_size 2 --max_train_steps=35000 --learning_rate=5e-05
/// --lr_scheduler='constant' --seed=42 --rank=10 --checkpointing_steps=5000 --random_flip`) and
/// `train_lora.py`'s defaults for the rest (`--ti_learning_rate` 5e-5, Adam β 0.9/0.999,
/// weight decay 1e-2, ε 1e-8, `--max_grad_norm` 1.0, random crop).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraTiConfig {
    /// Optimisation steps.
    pub steps: u32,
    /// Learning rate of the LoRA parameters (constant).
    pub lr: f64,
    /// Learning rate of the token embeddings (constant).
    pub ti_lr: f64,
    /// Images per step.
    pub batch_size: usize,
    /// LoRA rank.
    pub rank: i64,
    /// Seed of every draw (LoRA init, order, crops, flips, VAE samples, noise, timesteps).
    pub seed: u64,
    /// Side of the square crops (images are resized so their short side is this, then cropped).
    pub resolution: u32,
    /// Mirror half of the crops (`--random_flip`).
    pub random_flip: bool,
    /// `clip_grad_norm_` of the LoRA gradients.
    pub max_grad_norm: f64,
    /// AdamW β₁, β₂.
    pub betas: (f64, f64),
    /// AdamW ε.
    pub eps: f64,
    /// AdamW decoupled weight decay (both groups).
    pub weight_decay: f64,
    /// Token id every class's embedding starts from.
    pub init_token_id: i64,
    /// The prompt; `{}` becomes `"<placeholder> <super-class>"`.
    pub template: String,
    /// Write a resumable checkpoint every this many steps.
    pub checkpoint_every: u32,
}

impl Default for LoraTiConfig {
    fn default() -> Self {
        LoraTiConfig {
            steps: 35_000,
            lr: 5e-5,
            ti_lr: 5e-5,
            batch_size: 2,
            rank: DEFAULT_RANK,
            seed: 42,
            resolution: 224,
            random_flip: true,
            max_grad_norm: 1.0,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            init_token_id: DIFFMIX_INIT_TOKEN,
            template: DIFFMIX_TEMPLATE.to_string(),
            checkpoint_every: 5000,
        }
    }
}

impl LoraTiConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("Diff-Mix fine-tuning: {m}")));
        let rate = |x: f64| x.is_finite() && x >= 0.0;
        if self.steps == 0 {
            return bad("steps must be > 0".into());
        }
        if !rate(self.lr) || !rate(self.ti_lr) || self.lr == 0.0 && self.ti_lr == 0.0 {
            return bad(format!(
                "lr {} and ti_lr {} must be finite, ≥ 0 and not both 0",
                self.lr, self.ti_lr
            ));
        }
        if self.batch_size == 0 {
            return bad("batch_size must be > 0".into());
        }
        if self.rank < 1 {
            return bad(format!("rank must be ≥ 1, got {}", self.rank));
        }
        if self.resolution < 8 || !self.resolution.is_multiple_of(8) {
            return bad(format!(
                "resolution must be a multiple of 8 (the VAE's factor), got {}",
                self.resolution
            ));
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm <= 0.0 {
            return bad(format!(
                "max_grad_norm must be > 0, got {}",
                self.max_grad_norm
            ));
        }
        let (b1, b2) = self.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            return bad(format!("betas must be in [0, 1), got ({b1}, {b2})"));
        }
        if !rate(self.eps) || !rate(self.weight_decay) {
            return bad(format!(
                "eps {} and weight_decay {} must be finite and ≥ 0",
                self.eps, self.weight_decay
            ));
        }
        if self.init_token_id < 0 {
            return bad(format!(
                "init_token_id must be ≥ 0, got {}",
                self.init_token_id
            ));
        }
        if self.template.matches("{}").count() != 1 {
            return bad(format!(
                "template {:?} must hold exactly one {{}}",
                self.template
            ));
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every must be > 0".into());
        }
        Ok(())
    }
}

/// `torch.optim.AdamW`'s state of one tensor (no amsgrad), saved and restored by checkpoints.
#[derive(Debug)]
pub struct AdamState {
    /// First moment.
    pub m: Tensor,
    /// Second moment.
    pub v: Tensor,
}

impl AdamState {
    /// Zero moments for a parameter like `param`.
    pub fn new(param: &Tensor) -> Self {
        AdamState {
            m: param.zeros_like().detach(),
            v: param.zeros_like().detach(),
        }
    }

    /// Step `t` (1-based) of AdamW on `param` with `grad`, in place and without autograd:
    /// `p ← p·(1 − lr·wd)`, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
    pub fn step(&mut self, param: &mut Tensor, grad: &Tensor, t: u32, lr: f64, cfg: &LoraTiConfig) {
        let (b1, b2) = cfg.betas;
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        tch::no_grad(|| {
            let g = grad.to_kind(param.kind());
            self.m = &self.m * b1 + &g * (1.0 - b1);
            self.v = &self.v * b2 + (&g * &g) * (1.0 - b2);
            let bc1 = 1.0 - b1.powi(t);
            let bc2 = 1.0 - b2.powi(t);
            let decayed = &*param * (1.0 - lr * cfg.weight_decay);
            let denom = self.v.sqrt() / bc2.sqrt() + cfg.eps;
            let new = decayed - (&self.m / denom) * (lr / bc1);
            param.copy_(&new);
        });
    }
}

/// `last_hidden_state` of `ids` (N, L) where id `token_ids[c]` takes row `c` of `rows` (C, hidden)
/// (differentiably) instead of a row of the embedding table.
///
/// # Errors
/// [`Error::Input`] for rows of the wrong shape or ids outside the vocabulary that are not
/// placeholders.
pub fn encode_with_rows(
    text: &ClipTextModel,
    ids: &Tensor,
    token_ids: &[i64],
    rows: &Tensor,
) -> Result<Tensor> {
    let hidden = text.config().hidden_size;
    if rows.size() != [token_ids.len() as i64, hidden] {
        return Err(Error::Input(format!(
            "{} placeholder rows must be ({}, {hidden}), got {:?}",
            token_ids.len(),
            token_ids.len(),
            rows.size()
        )));
    }
    let shape = ids.size();
    let host: Vec<i64> = Vec::try_from(
        &ids.to_device(Device::Cpu)
            .to_kind(Kind::Int64)
            .flatten(0, -1),
    )?;
    // Slot of each position: its class, or -1 for an ordinary token.
    let slots: Vec<i64> = host
        .iter()
        .map(|id| {
            token_ids
                .iter()
                .position(|t| t == id)
                .map_or(-1, |c| c as i64)
        })
        .collect();
    let base_ids: Vec<i64> = host
        .iter()
        .zip(&slots)
        .map(|(&id, &s)| if s >= 0 { 0 } else { id })
        .collect();
    let device = text.token_embedding().device();
    let base_ids = Tensor::from_slice(&base_ids)
        .reshape(&shape)
        .to_device(device);
    let base = text.embed_tokens(&base_ids)?;
    let slot_t = Tensor::from_slice(&slots).to_device(device);
    let mask = slot_t.ge(0).reshape(&shape).unsqueeze(-1);
    let picked = rows
        .to_device(device)
        .to_kind(base.kind())
        .index_select(0, &slot_t.clamp_min(0))
        .reshape([shape[0], shape[1], hidden]);
    let embeds = picked.where_self(&mask, &base);
    Ok(text.forward_embeds(&embeds)?.last())
}

/// One batch of the joint objective, prepared (latents encoded, noise and timesteps drawn).
#[derive(Debug)]
pub struct JointBatch<'a> {
    /// Scaled latents (N, 4, h, w).
    pub latents: &'a Tensor,
    /// Standard-normal noise of the same shape.
    pub noise: &'a Tensor,
    /// One timestep per sample, in `0..1000`.
    pub timesteps: &'a [i64],
    /// Prompt ids (N, 77) holding the placeholders.
    pub ids: &'a Tensor,
}

/// What one optimisation step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// The batch's loss.
    pub loss: f64,
    /// Norm of the LoRA gradient before clipping.
    pub grad_norm: f64,
}

/// The trainable state of Diff-Mix's fine-tuning: the UNet LoRA, one embedding row per class
/// and their AdamW moments.
#[derive(Debug)]
pub struct JointTrainer {
    /// The LoRA attached to the UNet (its parameters require gradients).
    pub lora: TrainableLora,
    /// (C, hidden) f32 leaf: row `c` is the embedding of `token_ids[c]`.
    pub rows: Tensor,
    /// The placeholders' token ids, one per class.
    pub token_ids: Vec<i64>,
    lora_state: Vec<AdamState>,
    rows_state: AdamState,
    /// Optimisation steps done.
    pub step: u32,
    cfg: LoraTiConfig,
}

impl JointTrainer {
    /// Attaches `lora` (scale 1) to `unet`; `rows` (C, hidden) start the tokens `token_ids`.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad config, [`Error::Input`] for rows that do not match the
    /// token ids; LoRA errors as [`TrainableLora::attach`].
    pub fn new(
        unet: &mut UNet2DConditionModel,
        lora: &LoraWeights,
        token_ids: Vec<i64>,
        rows: &Tensor,
        cfg: LoraTiConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        if rows.dim() != 2 || rows.size()[0] != token_ids.len() as i64 || token_ids.is_empty() {
            return Err(Error::Input(format!(
                "{} token ids need ({}, hidden) rows, got {:?}",
                token_ids.len(),
                token_ids.len(),
                rows.size()
            )));
        }
        let lora = TrainableLora::attach(unet, lora, 1.0)?;
        let device = lora
            .parameters()
            .first()
            .map_or(Device::Cpu, |p| p.device());
        let rows = rows
            .detach()
            .to_device(device)
            .to_kind(Kind::Float)
            .copy()
            .set_requires_grad(true);
        let lora_state = lora.parameters().into_iter().map(AdamState::new).collect();
        Ok(JointTrainer {
            rows_state: AdamState::new(&rows),
            rows,
            token_ids,
            lora_state,
            lora,
            step: 0,
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LoraTiConfig {
        &self.cfg
    }

    /// The AdamW moments: one per LoRA parameter (in [`TrainableLora::parameters`] order), then
    /// the rows'.
    pub fn adam_states(&self) -> Vec<&AdamState> {
        self.lora_state.iter().chain([&self.rows_state]).collect()
    }

    /// As [`adam_states`](Self::adam_states), mutable (restoring a checkpoint).
    pub fn adam_states_mut(&mut self) -> Vec<&mut AdamState> {
        self.lora_state
            .iter_mut()
            .chain([&mut self.rows_state])
            .collect()
    }

    /// The loss of `batch` with the current parameters (differentiable); refreshes the
    /// UNet's LoRA weights first.
    ///
    /// # Errors
    /// [`Error::Input`] for mismatched sizes or timesteps outside `0..1000`.
    pub fn loss(
        &self,
        text: &ClipTextModel,
        unet: &mut UNet2DConditionModel,
        batch: &JointBatch<'_>,
    ) -> Result<Tensor> {
        let n = batch.latents.size().first().copied().unwrap_or(0);
        if batch.timesteps.len() as i64 != n || batch.noise.size() != batch.latents.size() {
            return Err(Error::Input(format!(
                "Diff-Mix batch: {} timesteps and noise {:?} for latents {:?}",
                batch.timesteps.len(),
                batch.noise.size(),
                batch.latents.size()
            )));
        }
        self.lora.refresh(unet)?;
        let device = self.rows.device();
        let z = batch.latents.to_device(device).to_kind(Kind::Float);
        let noise = batch.noise.to_device(device).to_kind(Kind::Float);
        let noisy = add_noise_at(&z, &noise, batch.timesteps)?;
        let context = encode_with_rows(text, batch.ids, &self.token_ids, &self.rows)?;
        let t = Tensor::from_slice(batch.timesteps).to_device(device);
        let eps = unet
            .forward(&noisy.to_kind(unet.kind()), &t, &context)?
            .to_kind(Kind::Float);
        Ok(eps.mse_loss(&noise, tch::Reduction::Mean))
    }

    /// Back-propagates the loss of `batch`; returns it. Gradients accumulate until
    /// [`apply`](Self::apply).
    ///
    /// # Errors
    /// As [`loss`](Self::loss); [`Error::Input`] for a non-finite loss.
    pub fn accumulate(
        &mut self,
        text: &ClipTextModel,
        unet: &mut UNet2DConditionModel,
        batch: &JointBatch<'_>,
    ) -> Result<f64> {
        let loss = self.loss(text, unet, batch)?;
        check_finite(&loss, "Diff-Mix fine-tuning loss")?;
        loss.backward();
        Ok(loss.double_value(&[]))
    }

    /// Clips the LoRA gradient to `max_grad_norm` (`torch.nn.utils.clip_grad_norm_`), applies
    /// AdamW to the LoRA (at `lr`) and the rows (at `ti_lr`), clears the gradients. Returns the
    /// LoRA gradient's norm before clipping.
    ///
    /// # Errors
    /// [`Error::Input`] if no gradient was accumulated.
    pub fn apply(&mut self) -> Result<f64> {
        let grads: Vec<Tensor> = self.lora.parameters().iter().map(|p| p.grad()).collect();
        if grads.iter().any(|g| !g.defined()) || !self.rows.grad().defined() {
            return Err(Error::Input(
                "no gradient accumulated for the LoRA and the tokens".into(),
            ));
        }
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
        let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
        // clip_grad_norm_: coefficient max_norm / (total + 1e-6), clamped to 1.
        let coef = (self.cfg.max_grad_norm / (total + 1e-6)).min(1.0);
        self.step += 1;
        let t = self.step;
        let cfg = self.cfg.clone();
        for ((p, state), g) in self
            .lora
            .parameters_mut()
            .into_iter()
            .zip(self.lora_state.iter_mut())
            .zip(&grads)
        {
            let g = (g * coef).detach();
            state.step(p, &g, t, cfg.lr, &cfg);
            p.zero_grad();
        }
        let g = self.rows.grad().detach().copy();
        self.rows_state.step(&mut self.rows, &g, t, cfg.ti_lr, &cfg);
        self.rows.zero_grad();
        Ok(total)
    }

    /// One step on a prepared batch: [`accumulate`](Self::accumulate) then
    /// [`apply`](Self::apply).
    ///
    /// # Errors
    /// As those.
    pub fn train_step(
        &mut self,
        text: &ClipTextModel,
        unet: &mut UNet2DConditionModel,
        batch: &JointBatch<'_>,
    ) -> Result<StepOutcome> {
        let loss = self.accumulate(text, unet, batch)?;
        let grad_norm = self.apply()?;
        Ok(StepOutcome { loss, grad_norm })
    }

    /// The learned rows (C, hidden), detached, f32 on the CPU.
    pub fn embeddings(&self) -> Tensor {
        self.rows.detach().to_device(Device::Cpu).copy()
    }

    /// Restores the UNet's original weights and returns the learned LoRA and rows.
    ///
    /// # Errors
    /// As [`TrainableLora::weights`].
    pub fn finish(self, unet: &mut UNet2DConditionModel) -> Result<(LoraWeights, Tensor)> {
        let weights = self.lora.weights()?;
        let rows = self.rows.detach().to_device(Device::Cpu).copy();
        self.lora.detach(unet);
        Ok((weights, rows))
    }
}
