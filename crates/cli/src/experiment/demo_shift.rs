//! The comparison `deda demo` opens with: the built-in experiment `demo-shift`
//! (`configs/experiments/demo-shift.toml`) on the demo's photos — vanilla and De-DA trained
//! on birds whose scene mostly matches their habitat, tested on the same birds on scenes
//! training never saw — reported as a small table, a verdict and the curves.
use super::{ExperimentSpec, HeadToHead, RunRow};
use crate::report::contact_sheet::grid;
use crate::report::save_png;
use anyhow::{bail, Context, Result};
use deda_data::{read_waterbirds, DataSet, WaterbirdsLabels};
use deda_train::run::compare::{compare_curves_svg, Series};
use deda_train::RunSummary;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// The built-in experiment's name.
pub const EXPERIMENT: &str = "demo-shift";
/// The baseline's and De-DA's run names in the experiment.
const RUNS: [&str; 2] = ["vanilla", "deda"];

/// How much to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The experiment as written (a few minutes on 2 CPU cores).
    Full,
    /// A few images and 2 epochs: seconds; for tests, shows nothing about De-DA.
    Quick,
}

/// The experiment with `seed` as its only run seed, shrunk for [`Size::Quick`].
pub fn spec(seed: u64, size: Size) -> Result<ExperimentSpec> {
    let (_, mut spec) = ExperimentSpec::load(EXPERIMENT)?;
    spec.experiment.seeds = vec![seed];
    spec.experiment.runs = RUNS.iter().map(|r| r.to_string()).collect();
    if size == Size::Quick {
        spec.recipe.train.epochs = 2;
        for (key, value) in [("per_bird_train", 6), ("per_bird_test", 2), ("size", 48)] {
            spec.set.insert(key.into(), toml::Value::Integer(value));
        }
        spec.recipe.loader.resize_short = 40;
        spec.recipe.loader.crop = 32;
        spec.recipe.loader.batch_size = 16;
    }
    let problems = spec.problems();
    if !problems.is_empty() {
        bail!("experiment {EXPERIMENT}: {}", problems.join("; "));
    }
    Ok(spec)
}

/// Runs the comparison in `out` (set, bank, runs, `results.md`), writes `curves.svg` and
/// `shift_images.png` there, and returns the report section (links relative to `report_dir`).
pub fn run(assets: &Path, out: &Path, report_dir: &Path, seed: u64, size: Size) -> Result<String> {
    let spec = spec(seed, size)?;
    let outcome =
        crate::experiment::runner::run_spec(EXPERIMENT, &spec, assets, out, Instant::now())?;
    let pick = |run: &str| -> Result<(&RunRow, &RunSummary)> {
        outcome
            .rows
            .iter()
            .zip(&outcome.summaries)
            .find(|(r, _)| r.run == run)
            .with_context(|| format!("experiment {EXPERIMENT} has no {run} run"))
    };
    let (base, base_summary) = pick(RUNS[0])?;
    let (deda, deda_summary) = pick(RUNS[1])?;
    let h2h = HeadToHead {
        baseline: ("vanilla", base),
        method: ("De-DA", deda),
    };
    let svg = compare_curves_svg(&[
        Series {
            label: "vanilla",
            colour: "#7f7f7f",
            records: &base_summary.records,
        },
        Series {
            label: "De-DA",
            colour: "#d62728",
            records: &deda_summary.records,
        },
    ]);
    deda_core::atomic::write_atomic(&out.join("curves.svg"), svg.as_bytes())
        .with_context(|| format!("writing {}", out.join("curves.svg").display()))?;
    let split = read_waterbirds(&out.join("data"), WaterbirdsLabels::Binary)
        .with_context(|| format!("reading {}", out.join("data").display()))?;
    save_png(
        &shift_sheet(&split.train, &split.test)?,
        &out.join("shift_images.png"),
    )?;
    let rel = out.strip_prefix(report_dir).unwrap_or(out);
    Ok(section(
        &spec,
        &h2h,
        &outcome.groups,
        &split,
        base_summary,
        deda_summary,
        rel,
    ))
}

/// The markdown of the comparison.
fn section(
    spec: &ExperimentSpec,
    h2h: &HeadToHead<'_>,
    groups: &[String],
    split: &deda_data::Split,
    base: &RunSummary,
    deda: &RunSummary,
    rel: &Path,
) -> String {
    let r = &spec.recipe;
    let link = |f: &str| rel.join(f).display().to_string();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Does De-DA help? Vanilla vs De-DA under a background shift\n\n{}\n\n{}\n",
        h2h.table(),
        h2h.verdict()
    );
    let _ = writeln!(
        md,
        "Landbird/waterbird classifier trained from scratch for {} epochs on {} px crops \
         (`{}` width {}, blocks {:?}, batch {}, lr {}), run seed {}, set seed {}; last-epoch \
         numbers, nothing selected on the test set. Training: {} images whose scene matches the \
         bird's habitat in {} of them; test: {} images of the **same birds** on scenes training \
         never saw, half on the other habitat's scenes. The worst group is the (bird type, scene) \
         pair the classifier gets most wrong. One seed and {} test images: differences of a few \
         points are noise. Training took {} (vanilla) and {} (De-DA) on `{}`.\n",
        r.train.epochs,
        r.loader.crop,
        r.model.name,
        r.model.width,
        r.model.layers.unwrap_or([2, 2, 2, 2]),
        r.loader.batch_size,
        r.optim.lr,
        h2h.method.1.seed,
        spec.experiment.set_seed,
        split.train.len(),
        spec.set
            .get("train_correlation")
            .and_then(toml::Value::as_float)
            .map_or("most".into(), |c| format!("{:.0} %", 100.0 * c)),
        split.test.len(),
        split.test.len(),
        took(base),
        took(deda),
        deda.device,
    );
    let groups_md = h2h.group_table(groups);
    if !groups_md.is_empty() {
        let _ = writeln!(
            md,
            "Accuracy per group (bird type_scene type):\n\n{groups_md}"
        );
    }
    let _ = writeln!(
        md,
        "![training curves: loss, test accuracy and worst-group accuracy per epoch]({})\n\n\
         Top: training images (scene mostly matching the habitat). Bottom: test images where \
         the scene does not match the bird's habitat (rare in training), on scenes training \
         never saw.\n\n![training and test \
         images]({})\n\nEverything of this comparison (data, part bank, both runs with their own \
         reports) is in [{}]({}).\n",
        link("curves.svg"),
        link("shift_images.png"),
        rel.display(),
        link("results.md"),
    );
    md
}

/// A run's training time, or that it was read back from an earlier invocation.
fn took(s: &RunSummary) -> String {
    if s.seconds > 0.0 {
        format!("{:.0} s", s.seconds)
    } else {
        "0 s (read back: trained by an earlier `deda demo` into the same folder)".into()
    }
}

/// Up to 4 samples of each of `groups`, spread over the set.
fn pick(set: &DataSet, groups: [u8; 2]) -> Vec<&deda_data::Sample> {
    groups
        .iter()
        .flat_map(|g| {
            let of_group: Vec<_> = set.samples.iter().filter(|s| s.group == Some(*g)).collect();
            let step = (of_group.len() / 4).max(1);
            of_group.into_iter().step_by(step).take(4)
        })
        .collect()
}

/// Row 1: up to 8 training images (4 per class); row 2: up to 8 test images from the groups
/// where the scene does not match the habitat.
fn shift_sheet(train: &DataSet, test: &DataSet) -> Result<image::RgbImage> {
    // Groups are 2·y + place: 0 landbird_land, 3 waterbird_water match; 1 and 2 do not.
    let mut tiles = Vec::new();
    for s in pick(train, [0, 3]).into_iter().chain(pick(test, [1, 2])) {
        tiles.push(
            deda_core::image_io::load_rgb(&s.path)
                .with_context(|| format!("reading {}", s.path.display()))?,
        );
    }
    Ok(grid(&tiles, 8, 96))
}

/// What the machine did during the demo, for the report's timing line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Wall-clock seconds since the demo began.
    pub wall_seconds: f64,
    /// CPU seconds (user + system) of this process so far, where the OS reports it.
    pub cpu_seconds: Option<f64>,
    /// The 1-minute load average at the end, where the OS reports it.
    pub load_average: Option<f64>,
}

impl Usage {
    /// Measures now (Linux `/proc`; elsewhere only the wall-clock).
    pub fn since(started: std::time::Instant) -> Usage {
        Usage {
            wall_seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: process_cpu_seconds(),
            load_average: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse().ok()),
        }
    }
}

/// User + system CPU time of this process from `/proc/self/stat` (fields 14 and 15, in clock
/// ticks of USER_HZ = 100, the value of Linux's ABI on every architecture deda builds for).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // `after` starts at field 3, so fields 14 and 15 are at 11 and 12.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn min_sec(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{} min {:02} s", s / 60, s % 60)
}

/// The demo report: its title line, then the comparison (if any) and the demo's timing, then
/// the rest of `body`.
pub fn assemble(body: &str, comparison: Option<&str>, usage: Usage) -> String {
    let (title, rest) = body.split_once('\n').unwrap_or((body, ""));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = format!("{title}\n\n");
    if let Some(c) = comparison {
        md.push_str(c);
    }
    let _ = write!(
        md,
        "This demo took {} wall-clock (after set-up and build)",
        min_sec(usage.wall_seconds)
    );
    if let Some(cpu) = usage.cpu_seconds {
        let _ = write!(md, " and {} of CPU", min_sec(cpu));
    }
    let _ = write!(md, ", with {cores} CPU threads available");
    if let Some(load) = usage.load_average {
        let _ = write!(
            md,
            " (1-minute load average at the end: {load:.1}{})",
            if load > cores as f64 + 0.5 {
                ": other work shared the machine"
            } else {
                ""
            }
        );
    }
    md.push_str(".\n\n");
    md.push_str(rest.trim_start_matches('\n'));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_demo_shift_is_valid_in_both_sizes() {
        for size in [Size::Full, Size::Quick] {
            let s = spec(7, size).unwrap_or_else(|e| panic!("{size:?}: {e:#}"));
            assert_eq!(s.experiment.seeds, vec![7]);
            assert_eq!(s.experiment.runs, RUNS.map(String::from).to_vec());
        }
        assert!(
            spec(0, Size::Quick).unwrap().recipe.train.epochs
                < spec(0, Size::Full).unwrap().recipe.train.epochs
        );
    }

    #[test]
    fn report_opens_with_the_comparison_and_the_time() {
        let body = "# title\n\n## 1. Data\n\ntext\n";
        let usage = Usage {
            wall_seconds: 125.2,
            cpu_seconds: Some(200.0),
            load_average: Some(9.0),
        };
        let md = assemble(body, Some("## Does De-DA help?\n\n| t |\n"), usage);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "# title");
        assert_eq!(lines[2], "## Does De-DA help?");
        assert!(
            md.contains("This demo took 2 min 05 s wall-clock (after set-up and build) and 3 min 20 s of CPU"),
            "{md}"
        );
        assert!(
            md.contains("load average at the end: 9.0: other work"),
            "{md}"
        );
        assert!(md.find("## 1. Data") > md.find("This demo took"), "{md}");
        let quiet = Usage {
            wall_seconds: 3.0,
            ..Usage::default()
        };
        let plain = assemble(body, None, quiet);
        assert!(
            plain.starts_with(
                "# title\n\nThis demo took 0 min 03 s wall-clock (after set-up and build), with"
            ),
            "{plain}"
        );
        assert!(
            !plain.contains("CPU,") && !plain.contains("load"),
            "{plain}"
        );
    }

    #[test]
    fn cpu_time_of_this_process_is_read_where_proc_exists() {
        if Path::new("/proc/self/stat").is_file() {
            let t0 = process_cpu_seconds().expect("parsable /proc/self/stat");
            let mut x = 0u64;
            let start = std::time::Instant::now();
            while start.elapsed().as_millis() < 300 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            assert!(x > 0);
            let t1 = process_cpu_seconds().expect("parsable /proc/self/stat");
            assert!(t1 > t0, "{t0} -> {t1}");
        }
    }
}
