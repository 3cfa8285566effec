//! SGD whose momentum buffers can be saved and restored, so a resumed run continues exactly.
//!
//! The only SGD of deda-train ([`crate::TrainStep`] owns one). tch's `nn::Optimizer` (libtorch's
//! C++ SGD) keeps its momentum buffers out of reach, so a resumed run could not continue
//! exactly; this optimizer does the update of `torch.optim.SGD` (dampening 0) on the var
//! store's trainable variables itself, matching it to 1e-6 on a problem where every
//! hyper-parameter matters (`tests/sgd_parity.rs`):
//! `g ← g + wd·p`; `b ← g` on a parameter's first step, then `b ← μ·b + g`; Nesterov:
//! `g ← g + μ·b`, else `g ← b`; `p ← p − lr·g`. Parameters are keyed by their var-store names
//! (torchvision's), and the buffers are saved as safetensors under the same names.
use std::collections::BTreeMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::optim::SgdConfig;

/// The 0-dim factors `[wd, μ, −lr]` of one step on one device and dtype (libtorch casts a
/// Python-side `alpha` to the parameter's dtype the same way).
struct Factors {
    device: Device,
    kind: Kind,
    values: [Tensor; 3],
}

impl Factors {
    fn get<'a>(cache: &'a mut Vec<Factors>, p: &Tensor, v: [f64; 3]) -> Result<&'a Factors> {
        let (device, kind) = (p.device(), p.kind());
        let i = match cache
            .iter()
            .position(|f| f.device == device && f.kind == kind)
        {
            Some(i) => i,
            None => {
                let make = |x: f64| {
                    Tensor::f_scalar_tensor(x, (kind, device)).map_err(Error::tch("SGD factors"))
                };
                let values = [make(v[0])?, make(v[1])?, make(v[2])?];
                cache.push(Factors {
                    device,
                    kind,
                    values,
                });
                cache.len() - 1
            }
        };
        Ok(&cache[i])
    }
}

/// SGD over the trainable variables of a var store, with inspectable momentum buffers.
#[derive(Debug)]
pub struct MomentumSgd {
    config: SgdConfig,
    /// Trainable variables sorted by name (shallow handles on the var store's tensors).
    params: Vec<(String, Tensor)>,
    /// The momentum buffer of each parameter; `None` until its first step.
    buffers: Vec<Option<Tensor>>,
}

impl MomentumSgd {
    /// An optimizer over every variable of `vs` that requires a gradient.
    pub fn new(vs: &VarStore, config: &SgdConfig) -> Result<Self> {
        config.validate()?;
        let named: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        let params: Vec<(String, Tensor)> = named
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        let buffers = params.iter().map(|_| None).collect();
        Ok(MomentumSgd {
            config: config.clone(),
            params,
            buffers,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Number of trainable tensors.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Clears the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update at learning rate `lr` from the gradients left by `backward`; parameters without
    /// a gradient are left alone (as in PyTorch).
    ///
    /// Five passes over each parameter, one allocation, like libtorch's own SGD: `d = g + wd·p`
    /// (`addcmul` with a 0-dim factor, which rounds `wd·p` then the sum, as PyTorch's
    /// `add(alpha)` does up to its fused multiply-add), `b = μ·b + d` in place, `d += μ·b`,
    /// `p += (−lr)·d`.
    pub fn step(&mut self, lr: f64) -> Result<()> {
        let SgdConfig {
            momentum,
            weight_decay,
            nesterov,
            ..
        } = self.config;
        let mut factors: Vec<Factors> = Vec::new();
        tch::no_grad(|| -> Result<()> {
            for ((name, p), buf) in self.params.iter_mut().zip(&mut self.buffers) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let f = Factors::get(&mut factors, p, [weight_decay, momentum, -lr])?;
                let fail = |what: &'static str| {
                    let name = name.clone();
                    move |source| Error::Tch {
                        context: format!("SGD {what} of {name}"),
                        source,
                    }
                };
                // `d` is a new tensor (updated in place below) unless it is the gradient itself.
                let (mut d, own) = if weight_decay != 0.0 {
                    (
                        g.f_addcmul(p, &f.values[0]).map_err(fail("weight decay"))?,
                        true,
                    )
                } else {
                    (g.shallow_clone(), false)
                };
                if momentum != 0.0 {
                    let b = match buf.take() {
                        None => d.f_detach_copy().map_err(fail("momentum buffer"))?,
                        Some(mut b) => {
                            let _ = b.f_mul_(&f.values[1]).map_err(fail("momentum"))?;
                            let _ = b.f_add_(&d).map_err(fail("momentum"))?;
                            b
                        }
                    };
                    if nesterov {
                        if own {
                            let _ = d.f_addcmul_(&b, &f.values[1]).map_err(fail("nesterov"))?;
                        } else {
                            d = d.f_addcmul(&b, &f.values[1]).map_err(fail("nesterov"))?;
                        }
                    } else {
                        d = b.shallow_clone();
                    }
                    *buf = Some(b);
                }
                let _ = p.f_addcmul_(&d, &f.values[2]).map_err(fail("update"))?;
            }
            Ok(())
        })
    }

    /// The momentum buffers that exist, by parameter name, on the CPU.
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .zip(&self.buffers)
            .filter_map(|((n, _), b)| {
                b.as_ref()
                    .map(|b| (n.clone(), b.to_device(tch::Device::Cpu).contiguous()))
            })
            .collect()
    }

    /// Writes the buffers to a safetensors file (an empty file when none exists yet).
    pub fn save_buffers(&self, path: &Path) -> Result<()> {
        Tensor::write_safetensors(&self.buffers(), path)
            .map_err(Error::tch("writing momentum buffers"))
    }

    /// Restores buffers written by [`MomentumSgd::save_buffers`]; a parameter missing from the
    /// file has no buffer yet, an unknown name or a wrong shape is an error.
    pub fn load_buffers(&mut self, path: &Path) -> Result<()> {
        let read =
            Tensor::read_safetensors(path).map_err(Error::tch("reading momentum buffers"))?;
        let mut file: BTreeMap<String, Tensor> = read.into_iter().collect();
        let mut problems = Vec::new();
        let mut restored = Vec::with_capacity(self.params.len());
        for (name, p) in &self.params {
            restored.push(match file.remove(name) {
                None => None,
                Some(t) if t.size() != p.size() => {
                    problems.push(format!(
                        "{name}: buffer {:?} vs parameter {:?}",
                        t.size(),
                        p.size()
                    ));
                    None
                }
                Some(t) => Some(t.to_kind(p.kind()).to_device(p.device())),
            });
        }
        problems.extend(
            file.keys()
                .map(|n| format!("{n}: no such trainable parameter")),
        );
        if !problems.is_empty() {
            return Err(Error::Shape {
                what: format!("momentum buffers {}", path.display()),
                detail: problems.join("; "),
            });
        }
        self.buffers = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};
    use tch::{Device, Kind};

    fn tiny(seed: i64) -> (VarStore, nn::Linear) {
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "fc", 5, 3, Default::default());
        (vs, lin)
    }

    fn loss_of(lin: &nn::Linear, i: i64) -> Tensor {
        let x = Tensor::arange(20, (Kind::Float, Device::Cpu)).view([4, 5]) / (10.0 + i as f64);
        lin.forward(&(x.sin()))
            .pow_tensor_scalar(2)
            .mean(Kind::Float)
    }

    #[test]
    fn saved_buffers_resume_the_same_trajectory() {
        let cfg = SgdConfig::default();
        let dir = tempfile::tempdir().unwrap();
        let (vs_a, lin_a) = tiny(5);
        let mut a = MomentumSgd::new(&vs_a, &cfg).unwrap();
        let (vs_b, lin_b) = tiny(5);
        let mut b = MomentumSgd::new(&vs_b, &cfg).unwrap();
        for i in 0..3 {
            for (opt, lin) in [(&mut a, &lin_a), (&mut b, &lin_b)] {
                opt.zero_grad();
                loss_of(lin, i).backward();
                opt.step(0.05).unwrap();
            }
        }
        let path = dir.path().join("m.safetensors");
        b.save_buffers(&path).unwrap();
        let mut b2 = MomentumSgd::new(&vs_b, &cfg).unwrap();
        b2.load_buffers(&path).unwrap();
        for i in 3..6 {
            for (opt, lin) in [(&mut a, &lin_a), (&mut b2, &lin_b)] {
                opt.zero_grad();
                loss_of(lin, i).backward();
                opt.step(0.05).unwrap();
            }
        }
        assert!(lin_a.ws.equal(&lin_b.ws));
        assert!(lin_a.bs.as_ref().unwrap().equal(lin_b.bs.as_ref().unwrap()));
    }
}
