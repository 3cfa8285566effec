//! `deda build-set`: real mini-benchmarks from photo cut-outs and scene photos.
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use deda_data::bench_sets::{
    build_mini_waterbirds, build_scarce_multiclass, MiniWaterbirdsConfig, ScarceMulticlassConfig,
    RECIPE_FILE,
};
use deda_data::{read_image_folder_split, write_cub_layout, GroundTruthMasks};
use std::path::PathBuf;

/// Which benchmark set to build.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SetKind {
    /// Water/land birds on water/land scenes, background–label correlation 0.95 in train.
    MiniWaterbirds,
    /// Seven object categories, few images per class.
    Scarce,
}

/// Arguments of `deda build-set`.
#[derive(Args, Debug)]
pub struct BuildSetArgs {
    /// Which set.
    pub kind: SetKind,
    /// Folder with `cutouts.tsv`, `backgrounds.tsv` and the photos they list.
    #[arg(long)]
    pub assets: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Layout of the written set: the builder's own (`native`: Waterbirds for mini-waterbirds,
    /// ImageFolder for scarce), or CUB-200-2011's (`cub`, scarce only; read it with `cub:PATH`,
    /// ground-truth masks in `segmentations/`), for running the paper's CUB recipes on it.
    #[arg(long, value_enum, default_value_t = Layout::Native)]
    pub layout: Layout,
    /// Scarce only: composites per training cut-out (each on its own scene, scale and place),
    /// so `5 ×` this many training images per class.
    #[arg(long, default_value_t = 1)]
    pub train_per_cutout: u32,
    /// Scarce only: composites per held-out test cut-out (3 cut-outs per class).
    #[arg(long, default_value_t = 5)]
    pub test_per_cutout: u32,
}

/// The scarce set's config of `args`.
fn scarce_config(args: &BuildSetArgs) -> ScarceMulticlassConfig {
    ScarceMulticlassConfig {
        seed: args.seed,
        per_cutout_train: args.train_per_cutout,
        per_cutout_test: args.test_per_cutout,
        ..Default::default()
    }
}

/// Layout of a built set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// The builder's own layout.
    Native,
    /// CUB-200-2011's official layout.
    Cub,
}

/// Runs `deda build-set`.
pub fn run(args: BuildSetArgs) -> Result<()> {
    if matches!(args.kind, SetKind::MiniWaterbirds)
        && (args.train_per_cutout != 1 || args.test_per_cutout != 5)
    {
        return Err(crate::UsageError(
            "--train-per-cutout and --test-per-cutout are for the scarce set".into(),
        )
        .into());
    }
    if args.layout == Layout::Cub {
        return build_in_cub_layout(&args);
    }
    let report = match args.kind {
        SetKind::MiniWaterbirds => build_mini_waterbirds(
            &args.assets,
            &args.out,
            &MiniWaterbirdsConfig {
                seed: args.seed,
                ..Default::default()
            },
        ),
        SetKind::Scarce => build_scarce_multiclass(&args.assets, &args.out, &scarce_config(&args)),
    }
    .with_context(|| format!("building {:?} into {}", args.kind, args.out.display()))?;
    println!(
        "built {} train and {} test images in {} (recipe {})",
        report.train_images,
        report.test_images,
        report.out_dir.display(),
        report.recipe_path.display()
    );
    Ok(())
}

/// Builds the scarce set in its own layout in a temporary folder beside `--out`, then writes it
/// in CUB's layout to `--out` (with the builder's recipe file).
fn build_in_cub_layout(args: &BuildSetArgs) -> Result<()> {
    if !matches!(args.kind, SetKind::Scarce) {
        return Err(crate::UsageError(
            "--layout cub is for the scarce set (mini-waterbirds is already in Waterbirds' layout)"
                .into(),
        )
        .into());
    }
    let parent = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".deda-build-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a staging folder in {}", parent.display()))?;
    build_scarce_multiclass(&args.assets, staging.path(), &scarce_config(args))
        .with_context(|| format!("building the scarce set from {}", args.assets.display()))?;
    let split = read_image_folder_split(staging.path())?;
    let masks = GroundTruthMasks::scarce_multiclass(staging.path());
    let report = write_cub_layout(&split, Some(&masks), &args.out)
        .with_context(|| format!("writing {} in CUB's layout", args.out.display()))?;
    let recipe = args.out.join(RECIPE_FILE);
    std::fs::copy(staging.path().join(RECIPE_FILE), &recipe)
        .with_context(|| format!("writing {}", recipe.display()))?;
    println!(
        "built {} train and {} test images ({} masks) in CUB's layout in {} (recipe {})",
        report.train_images,
        report.test_images,
        report.masks,
        report.out_dir.display(),
        recipe.display()
    );
    Ok(())
}
