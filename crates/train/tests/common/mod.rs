//! Shared set-up of the deda-train integration tests: the tiny two-class image set and its
//! `TrainData`, an in-memory part store for De-DA runs, the TOML recipe of a tiny network on
//! the CPU, `fit` without progress output, records without their wall-clock fields and the
//! byte comparison of two run folders.
#![allow(dead_code)]
use std::path::Path;
use std::sync::Arc;

use deda_combine::{CdpEntry, CipEntry, CombineSampler, PartPool};
use deda_core::{ClassId, PartId};
use deda_loader::{Combiner, PartError, PartStore, SampleEntry, SampleSource, VecSource};
use deda_train::{
    fit, EpochRecord, FitOptions, RunError, RunSummary, Silent, TrainConfig, TrainData,
};
use image::{Rgb, RgbImage, Rgba, RgbaImage};

/// Writes `<root>/<split>/class{0,1}/<i>.png` (`n` per class, `w × h`, a gradient whose green
/// channel is the class and whose red/blue steps per pixel are `steps`) and returns them as a
/// source.
pub fn tiny_source(
    root: &Path,
    split: &str,
    n: usize,
    (w, h): (u32, u32),
    (sx, sy): (u32, u32),
) -> Arc<VecSource> {
    let mut samples = Vec::new();
    for c in 0..2u32 {
        let dir = root.join(split).join(format!("class{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let path = dir.join(format!("{i}.png"));
            RgbImage::from_fn(w, h, |x, y| {
                Rgb([(x * sx) as u8, (c * 200) as u8, ((y + i as u32) * sy) as u8])
            })
            .save(&path)
            .unwrap();
            samples.push(SampleEntry {
                path,
                id: format!("{split}/class{c}/{i}.png"),
                target: vec![(ClassId(c), 1.0)],
            });
        }
    }
    Arc::new(VecSource {
        samples,
        num_classes: 2,
    })
}

/// The class names of [`tiny_source`].
pub fn class_names() -> Vec<String> {
    vec!["class0".into(), "class1".into()]
}

/// `TrainData` of a training and a test source: no combiner, test groups or peers.
pub fn train_data(
    train: Arc<VecSource>,
    test: Arc<VecSource>,
    class_names: Vec<String>,
) -> TrainData {
    TrainData {
        train,
        test,
        class_names,
        test_groups: None,
        group_names: Vec::new(),
        combiner: None,
        peers: None,
        inputs: Default::default(),
    }
}

/// The tiny set most tests train on, written under `set`: `n_train` training and `n_test` test
/// images per class of [`tiny_source`] at 40 × 36 px.
pub fn tiny_data(set: &Path, n_train: usize, n_test: usize) -> TrainData {
    train_data(
        tiny_source(set, "train", n_train, (40, 36), (5, 6)),
        tiny_source(set, "test", n_test, (40, 36), (5, 6)),
        class_names(),
    )
}

/// Parts drawn on the fly: CDP `cdp<c>` / `syn<c>` a disc of class colour, CIP `cip<c>` a
/// gradient whose blue channel is `cip_blue[c]`.
pub struct MemoryParts {
    pub cip_blue: [u8; 2],
}

impl PartStore for MemoryParts {
    fn load_cdp(&self, id: &PartId) -> Result<RgbaImage, PartError> {
        let v = if id.0.ends_with('0') { 40 } else { 220 };
        Ok(RgbaImage::from_fn(16, 16, |x, y| {
            let inside = (x as i32 - 8).pow(2) + (y as i32 - 8).pow(2) < 49;
            Rgba([v, 255 - v, v / 2, if inside { 255 } else { 0 }])
        }))
    }

    fn load_cip(&self, id: &PartId) -> Result<RgbImage, PartError> {
        let b = self.cip_blue[usize::from(!id.0.ends_with('0'))];
        Ok(RgbImage::from_fn(40, 40, |x, y| {
            Rgb([(x * 6) as u8, (y * 6) as u8, b])
        }))
    }
}

/// De-DA's combiner over `parts`: one CDP (with one synthetic CDP) and one CIP per class of
/// [`tiny_source`], each sample's own CDP that of its class, drawn with `cfg`'s combination
/// probabilities.
pub fn combiner(cfg: &TrainConfig, source: &dyn SampleSource, parts: MemoryParts) -> Combiner {
    let cdps = (0..2u32)
        .map(|c| CdpEntry {
            id: PartId(format!("cdp{c}")),
            class: ClassId(c),
            synthetic: vec![PartId(format!("syn{c}"))],
            ..Default::default()
        })
        .collect();
    let cips = (0..2u32)
        .map(|c| CipEntry {
            id: PartId(format!("cip{c}")),
            class: ClassId(c),
        })
        .collect();
    let sampler =
        CombineSampler::new(cfg.method.combine_or_default(), PartPool::new(cdps, cips)).unwrap();
    let cdp_of = (0..source.len())
        .map(|i| Some(source.target(i)[0].0 .0 as usize))
        .collect();
    Combiner {
        store: Arc::new(parts),
        sampler,
        cdp_of,
    }
}

/// The `[model]` of most tests: ResNet-18 of width 4 with one block per stage.
pub const TINY_RESNET: &str = "name = \"resnet18\"\nwidth = 4\nlayers = [1, 1, 1, 1]";

/// A recipe on the ImageFolder set at a path, on the CPU with one libtorch thread, 32-px crops
/// of images resized to 36 px. Each field holds its table's other keys (`model` empty: the
/// [`TINY_RESNET`]); a field may go on with sub-tables (`[optim.schedule]`, `[method.combine]`).
#[derive(Default)]
pub struct Recipe<'a> {
    pub model: &'a str,
    pub loader: &'a str,
    pub optim: &'a str,
    pub method: &'a str,
    pub train: &'a str,
}

impl Recipe<'_> {
    /// The recipe's TOML, training on the ImageFolder set at `set`.
    pub fn toml(&self, set: &Path) -> String {
        let model = if self.model.is_empty() {
            TINY_RESNET
        } else {
            self.model
        };
        format!(
            "[data]\ndataset = \"imagefolder:{}\"\n\
             [model]\n{model}\n\
             [loader]\nresize_short = 36\ncrop = 32\n{}\n\
             [optim]\n{}\n\
             [method]\n{}\n\
             [train]\ndevice = \"cpu\"\ntorch_threads = 1\n{}\n",
            set.display(),
            self.loader,
            self.optim,
            self.method,
            self.train
        )
    }

    /// The recipe parsed (panics on a parse error).
    pub fn config(&self, set: &Path) -> TrainConfig {
        TrainConfig::from_toml(&self.toml(set)).unwrap()
    }
}

/// `fit` without progress output.
pub fn fit_quiet(
    cfg: &TrainConfig,
    data: TrainData,
    dir: &Path,
    options: FitOptions,
) -> Result<RunSummary, RunError> {
    fit(cfg, data, dir, options, &mut Silent)
}

/// Resume the run to its end.
pub const RESUME: FitOptions = FitOptions {
    resume: true,
    stop_after: None,
};

/// A fresh run stopped (as if interrupted) after `epochs` epochs.
pub fn stop_after(epochs: usize) -> FitOptions {
    FitOptions {
        resume: false,
        stop_after: Some(epochs),
    }
}

/// The record without its wall-clock fields.
pub fn timeless(r: &EpochRecord) -> EpochRecord {
    EpochRecord {
        seconds: 0.0,
        data_wait_fraction: 0.0,
        ..r.clone()
    }
}

/// Asserts that each of `files` (relative paths) has the same bytes under `a` and `b`; the
/// message says "`file` differs between `between`".
pub fn assert_same_files(a: &Path, b: &Path, files: &[&str], between: &str) {
    for file in files {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs between {between}");
    }
}
