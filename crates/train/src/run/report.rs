//! The run report: `curves.svg` (training loss and test top-1 per epoch) and `report.md`.
use std::fmt::Write as _;

use crate::config::TrainConfig;
use crate::error::RunResult;
use crate::run::metrics::EpochRecord;
use crate::run::run_dir::RunDir;
use crate::trainer::RunSummary;

const W: f64 = 640.0;
const H: f64 = 360.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;
const LOSS_COLOUR: &str = "#d62728";
const TOP1_COLOUR: &str = "#1f77b4";

/// An SVG line plot of the records: training loss (left axis, red) and test top-1 (right axis,
/// 0–100 %, blue) against the epoch.
pub fn curves_svg(records: &[EpochRecord]) -> String {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let max_epoch = records.iter().map(|r| r.epoch).max().unwrap_or(0).max(1) as f64;
    let losses: Vec<f64> = records
        .iter()
        .map(|r| r.train_loss)
        .filter(|v| v.is_finite())
        .collect();
    let max_loss = losses.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.05;
    let x = |e: usize| LEFT + pw * e as f64 / max_epoch;
    let y = |frac: f64| TOP + ph * (1.0 - frac.clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    // Grid and axes.
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let yy = y(f);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy}" x2="{}" y2="{yy}" stroke="#ddd"/>"##,
            LEFT + pw
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" fill="{LOSS_COLOUR}">{:.2}</text>"#,
            LEFT - 6.0,
            yy + 4.0,
            max_loss * f
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" fill="{TOP1_COLOUR}">{:.0}%</text>"#,
            LEFT + pw + 6.0,
            yy + 4.0,
            100.0 * f
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let ticks = 5.min(max_epoch as usize);
    for k in 0..=ticks {
        let e = (max_epoch as usize * k) / ticks.max(1);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{e}</text>"#,
            x(e),
            TOP + ph + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#,
        LEFT + pw / 2.0,
        H - 6.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" fill="{LOSS_COLOUR}">train loss</text>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="end" fill="{TOP1_COLOUR}">test top-1</text>"#,
        LEFT + pw
    );
    // Lines.
    let line = |pts: Vec<(f64, f64)>, colour: &str| {
        let p: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let mut out = format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            p.join(" ")
        );
        for (a, b) in &pts {
            let _ = write!(
                out,
                r#"<circle cx="{a:.1}" cy="{b:.1}" r="2.5" fill="{colour}"/>"#
            );
        }
        out
    };
    let loss_pts = records
        .iter()
        .filter(|r| r.train_loss.is_finite())
        .map(|r| (x(r.epoch), y(r.train_loss / max_loss)))
        .collect();
    let top1_pts = records
        .iter()
        .filter_map(|r| r.top1.map(|t| (x(r.epoch), y(t))))
        .collect();
    let _ = writeln!(s, "{}", line(loss_pts, LOSS_COLOUR));
    let _ = writeln!(s, "{}", line(top1_pts, TOP1_COLOUR));
    s.push_str("</svg>\n");
    s
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |x| format!("{:.2} %", 100.0 * x))
}

/// The markdown report; `extra` (e.g. the contact sheet of the first batch) is appended.
pub fn report_markdown(config: &TrainConfig, summary: &RunSummary, extra: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Training run: {} · {}\n",
        config.model.name, config.method.name
    );
    let _ = writeln!(
        s,
        "Data set `{}`{}, {} epochs, batch {}, crop {} px, SGD lr {} (Nesterov: {}), seed {}, device {}.\n",
        config.data.dataset,
        config.data.k_shot.map_or(String::new(), |k| format!(" ({k}-shot)")),
        summary.epochs,
        config.loader.batch_size,
        config.loader.crop,
        config.optim.lr,
        config.optim.nesterov,
        config.train.seed,
        summary.device
    );
    let _ = writeln!(s, "| metric | value |\n| --- | --- |");
    let _ = writeln!(
        s,
        "| best top-1 (epoch) | {} ({}) |",
        pct(summary.best_top1),
        summary.best_epoch.map_or("–".into(), |e| e.to_string())
    );
    let _ = writeln!(s, "| last top-1 | {} |", pct(summary.last_top1));
    if let Some(e) = &summary.last_eval {
        let _ = writeln!(
            s,
            "| last mean per-class accuracy | {} |",
            pct(e.mean_class_acc)
        );
        if e.per_group.is_some() {
            let _ = writeln!(
                s,
                "| last worst-group accuracy | {} |",
                pct(e.worst_group_acc)
            );
        }
        if e.map.is_some() {
            let _ = writeln!(s, "| last mAP | {} |", pct(e.map));
        }
    }
    let _ = writeln!(s, "| final train loss | {:.4} |", summary.final_train_loss);
    let _ = writeln!(s, "| steps | {} |", summary.steps);
    let _ = writeln!(s, "| seconds (this call) | {:.1} |\n", summary.seconds);
    let _ = writeln!(s, "## Curves\n\nTraining loss (red, left axis) and test top-1 (blue, right axis) per epoch.\n");
    let _ = writeln!(s, "![loss and accuracy](curves.svg)\n");
    s.push_str(extra);
    s
}

/// Writes `curves.svg` and `report.md` into the run directory.
pub fn write_report(
    dir: &RunDir,
    config: &TrainConfig,
    summary: &RunSummary,
    extra: &str,
) -> RunResult<()> {
    deda_core::atomic::write_atomic(&dir.curves(), curves_svg(&summary.records).as_bytes())?;
    deda_core::atomic::write_atomic(
        &dir.report(),
        report_markdown(config, summary, extra).as_bytes(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_two_lines_with_one_point_per_record() {
        let recs: Vec<EpochRecord> = (0..4)
            .map(|e| EpochRecord {
                epoch: e,
                step: e,
                train_loss: 2.0 - e as f64 * 0.3,
                lr: 0.1,
                top1: (e % 2 == 1).then_some(0.2 * e as f64),
                best_top1: None,
                best_epoch: None,
                mean_class_acc: None,
                worst_group_acc: None,
                group_acc: None,
                map: None,
                seconds: 0.0,
                data_wait_fraction: 0.0,
                combined: 0,
                bad_samples: 0,
            })
            .collect();
        let svg = curves_svg(&recs);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(
            svg.matches(&format!(r#"fill="{LOSS_COLOUR}"/>"#)).count(),
            4
        );
        assert_eq!(
            svg.matches(&format!(r#"fill="{TOP1_COLOUR}"/>"#)).count(),
            2
        );
    }
}
