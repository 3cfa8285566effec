//! `deda demo`: the De-DA pipeline end to end on the photos embedded in the binary.
//!
//! 1. Extract the embedded cut-outs and scenes.
//! 2. Build a small data-scarce set from them (objects pasted on scenes, masks kept).
//! 3. Decouple the training images into a part bank (ground-truth masks, alpha-pyramid CIPs)
//!    and add synthetic CDPs with the identity editor.
//! 4. Look at CDP/CIP pairs and at the online combinations the loader draws.
//! 5. Train vanilla and De-DA under a background shift (the built-in experiment `demo-shift`,
//!    see [`crate::experiment::demo_shift`]) unless `--no-compare`.
//! 6. Write `report.md` (opening with that comparison) with the pictures, and `provenance.json`.
use crate::provenance::Provenance;
use crate::report::contact_sheet::grid;
use crate::report::save_png;
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::PartBank;
use deda_data::bench_sets::{build_scarce_multiclass, ScarceMulticlassConfig};
use image::RgbImage;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// Arguments of `deda demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder (report, data, bank).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train the vanilla vs De-DA comparison on a few images for 2 epochs (seconds; for tests:
    /// its numbers say nothing about De-DA).
    #[arg(long, conflicts_with = "no_compare")]
    pub quick: bool,
    /// Skip the vanilla vs De-DA comparison (only data, part bank and pictures).
    #[arg(long)]
    pub no_compare: bool,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut report =
        String::from("# deda demo: Decoupled Data Augmentation on embedded photos\n\n");

    let assets = extract_assets(&out.join("assets"))?;
    let data_dir = out.join("data");
    let cfg = ScarceMulticlassConfig {
        seed: args.seed,
        ..Default::default()
    };
    let built = build_scarce_multiclass(&assets, &data_dir, &cfg)
        .with_context(|| format!("building the demo data set in {}", data_dir.display()))?;
    eprintln!(
        "demo: data set with {} train / {} test images in {}",
        built.train_images,
        built.test_images,
        data_dir.display()
    );
    let spec = deda_data::DataSpec::new(deda_data::DataKind::Scarce, &data_dir);
    let split = crate::data_spec::read(&spec)?;
    let _ = writeln!(
        report,
        "## 1. Data\n\n{} classes ({}), {} training and {} test images: real photo cut-outs pasted on \
         real scenes (`deda build-set scarce`, seed {}).\n",
        split.train.class_names.len(),
        split.train.class_names.join(", "),
        split.train.len(),
        split.test.len(),
        args.seed
    );
    save_png(&sample_sheet(&split.train)?, &out.join("train_images.png"))?;
    report.push_str("![training images](train_images.png)\n\n");

    let bank_dir = out.join("bank");
    let masks = spec
        .ground_truth_masks()
        .context("the demo data set has no masks")?;
    let mut segmenter = deda_decouple::ground_truth_segmenter(masks);
    let dec = crate::stages::decouple_split(
        &split.train,
        &mut segmenter,
        None,
        &deda_decouple::BankTarget::new(&bank_dir),
    )?;
    crate::stages::print_decouple_report(&dec);
    // No diffusion weights ship with deda: the identity editor stands in for SDEdit so that
    // synthetic CDPs (p_syn) flow through the pipeline.
    let edits = crate::stages::edit_bank(
        &bank_dir,
        &mut deda_edit::IdentityEditor,
        1,
        args.seed,
        None,
    )?;
    eprintln!(
        "demo: {} synthetic CDP(s) by the identity editor: copies of the real CDPs, not edits \
         (`deda edit --editor sd` with SD-1.5 + LayerDiffuse weights makes real ones)",
        edits.written + edits.skipped_existing
    );
    let bank = PartBank::open(&bank_dir)
        .with_context(|| format!("opening part bank {}", bank_dir.display()))?;
    let (cdp, cip, syn) = bank.summary().totals();
    let _ = writeln!(
        report,
        "## 2. Decoupling\n\nEach training image was split into its class-dependent part (CDP, the \
         object as a transparent cut-out) and its class-independent part (CIP, the background with \
         the hole filled by alpha-pyramid padding). Part bank: {cdp} CDPs, {cip} CIPs, {syn} \
         synthetic CDPs; {} image(s) with nothing found.\n\n```text\n{}```\n",
        dec.nothing_found.len(),
        bank.summary()
    );
    save_png(
        &crate::report::parts_sheet(&bank, 12)?,
        &out.join("parts.png"),
    )?;
    report.push_str(
        "CDP and CIP of each training image, side by side:\n\n![CDP/CIP pairs](parts.png)\n\n",
    );

    let bank = Arc::new(bank);
    combination_section(&split.train, bank.clone(), args.seed, out, &mut report)?;
    let comparison = if args.no_compare {
        None
    } else {
        use crate::experiment::demo_shift::{self, Size};
        let (size, dir) = if args.quick {
            (Size::Quick, "shift-quick")
        } else {
            (Size::Full, "shift")
        };
        Some(demo_shift::run(
            &assets,
            &out.join(dir),
            out,
            args.seed,
            size,
        )?)
    };
    let usage = crate::experiment::demo_shift::Usage::since(started);
    let report = crate::experiment::demo_shift::assemble(&report, comparison.as_deref(), usage);

    let mut prov = Provenance::collect(args.seed);
    prov.inputs
        .insert("bank_manifest_sha256".into(), bank.manifest_hash());
    prov.inputs
        .insert("data_recipe_sha256".into(), built.recipe_sha256.clone());
    crate::provenance::write(&prov, out)?;
    crate::report::write_markdown(&out.join("report.md"), &report)?;
    println!(
        "demo: report written to {}",
        out.join("report.md").display()
    );
    Ok(())
}

/// Writes the embedded demo files into `dir` and returns it.
fn extract_assets(dir: &Path) -> Result<PathBuf> {
    for (rel, bytes) in DEMO_FILES {
        deda_core::atomic::write_atomic(&dir.join(rel), bytes)
            .with_context(|| format!("extracting demo file {rel}"))?;
    }
    Ok(dir.to_path_buf())
}

/// Up to 4 training images per class, one row per class.
fn sample_sheet(train: &deda_data::DataSet) -> Result<RgbImage> {
    let mut tiles = Vec::new();
    for c in 0..train.num_classes() {
        let of_class = train
            .samples
            .iter()
            .filter(|s| s.label.classes().first().map(|k| k.index()) == Some(c))
            .take(4);
        for s in of_class {
            tiles.push(deda_core::image_io::load_rgb(&s.path)?);
        }
    }
    Ok(grid(&tiles, 4, 128))
}

/// Combinations drawn by the real loader (p_aug forced to 1 so every tile is one), as a sheet
/// plus each tile's soft label.
fn combination_section(
    train: &deda_data::DataSet,
    bank: Arc<PartBank>,
    seed: u64,
    out: &Path,
    report: &mut String,
) -> Result<()> {
    let source = deda_train::data::source_of(train);
    let combine = deda_combine::CombineConfig {
        p_aug: 1.0,
        ..Default::default()
    };
    let dir = bank.dir().to_path_buf();
    let (combiner, _) = deda_loader::Combiner::from_bank(bank, combine.clone(), &source)
        .with_context(|| format!("building the De-DA combiner over {}", dir.display()))?;
    let cfg = deda_loader::LoaderConfig {
        batch_size: 16,
        resize_short: 192,
        crop: 160,
        seed,
        ..Default::default()
    };
    let loader = deda_loader::Loader::new(cfg.clone(), Arc::new(source), Some(combiner))
        .context("building the loader")?;
    let batch = loader
        .epoch(0)?
        .next()
        .context("the loader yielded no batch")??;
    let tiles: Vec<RgbImage> = (0..batch.n)
        .map(|k| batch.image_rgb(k, cfg.mean, cfg.std))
        .collect();
    save_png(&grid(&tiles, 4, 160), &out.join("combinations.png"))?;
    let _ = writeln!(
        report,
        "## 3. Online combination\n\nWhat the loader feeds the network (here with p_aug = 1; \
         training uses p_aug = {}, p_syn = {}, p_mix = {}): each sample's CDP pasted at a random \
         scale, place, flip and rotation onto a CIP of another class, sometimes with a second \
         CDP; soft labels weighted by visible area.\n\n![combinations](combinations.png)\n\n\
         | tile | soft label |\n| --- | --- |",
        deda_combine::CombineConfig::default().p_aug,
        combine.p_syn,
        combine.p_mix
    );
    for k in 0..batch.n {
        let _ = writeln!(
            report,
            "| {} | {} |",
            k + 1,
            batch.describe_target(k, &train.class_names)
        );
    }
    report.push('\n');
    Ok(())
}
