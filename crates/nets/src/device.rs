//! Choosing the tch device: CUDA when available, unless overridden.
use std::fmt;
use std::str::FromStr;

use tch::Device;

use crate::error::{Error, Result};

/// A device request: `auto` (CUDA 0 if available, else CPU), `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when libtorch sees a GPU, otherwise the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA device with this index.
    Cuda(usize),
}

impl DeviceChoice {
    /// Resolves the request to a tch device; a CUDA device that does not exist is an error.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(i) => {
                let count = tch::Cuda::device_count();
                if (i as i64) < count {
                    Ok(Device::Cuda(i))
                } else {
                    Err(Error::Device {
                        spec: self.to_string(),
                        reason: format!("libtorch sees {count} CUDA device(s)"),
                    })
                }
            }
        }
    }

    /// The choice from the environment variable `var` (e.g. `DEDA_DEVICE`), `Auto` if unset.
    pub fn from_env(var: &str) -> Result<Self> {
        match std::env::var(var) {
            Ok(s) => s.parse(),
            Err(_) => Ok(DeviceChoice::Auto),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let bad = |reason: &str| Error::Device {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        match t.as_str() {
            "auto" | "" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            _ => match t.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceChoice::Cuda)
                    .map_err(|_| bad("expected cuda:<index>")),
                None => Err(bad("expected auto, cpu, cuda or cuda:<index>")),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// A short name of a tch device for reports: `cpu`, `cuda:0`, `mps`, ...
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_choices() {
        for (s, c) in [
            ("auto", DeviceChoice::Auto),
            ("CPU", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
        ] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap(), c);
        }
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cpu_resolves_and_missing_cuda_is_an_error() {
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu);
        let n = tch::Cuda::device_count() as usize;
        let err = DeviceChoice::Cuda(n + 1).resolve().unwrap_err();
        assert!(err.to_string().contains("CUDA device"), "{err}");
    }
}

/// What libtorch sees of CUDA (for `deda doctor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaStatus {
    /// CUDA devices visible to libtorch.
    pub devices: usize,
    /// Whether cuDNN is available.
    pub cudnn: bool,
}

/// The CUDA devices libtorch sees, and cuDNN.
pub fn cuda_status() -> CudaStatus {
    CudaStatus {
        devices: usize::try_from(tch::Cuda::device_count()).unwrap_or(0),
        cudnn: tch::Cuda::cudnn_is_available(),
    }
}
