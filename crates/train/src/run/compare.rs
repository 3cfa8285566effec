//! Curves of several runs in one picture (e.g. vanilla against De-DA): training loss per epoch
//! on the left, test top-1 (solid) and worst-group accuracy (dashed, where the test set has
//! groups) on the right.
use std::fmt::Write as _;

use crate::run::metrics::EpochRecord;

/// One run's curves and how to draw them.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// SVG colour of its lines.
    pub colour: &'a str,
    /// Its epoch records.
    pub records: &'a [EpochRecord],
}

const PANEL_W: f64 = 340.0;
const PANEL_H: f64 = 220.0;
const MARGIN_L: f64 = 50.0;
const GAP: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// A panel's plotting box: left, top, width, height; x over `0..=max_epoch`, y over `0..=y_max`.
struct Panel {
    left: f64,
    max_epoch: f64,
    y_max: f64,
}

impl Panel {
    fn x(&self, epoch: usize) -> f64 {
        self.left + PANEL_W * epoch as f64 / self.max_epoch
    }

    fn y(&self, v: f64) -> f64 {
        TOP + PANEL_H * (1.0 - (v / self.y_max).clamp(0.0, 1.0))
    }

    /// Frame, horizontal grid with labels, epoch ticks and the title.
    fn frame(&self, s: &mut String, title: &str, label: impl Fn(f64) -> String) {
        for k in 0..=4 {
            let v = self.y_max * k as f64 / 4.0;
            let yy = self.y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                self.left,
                self.left + PANEL_W,
                self.left - 5.0,
                yy + 4.0,
                label(v)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="black"/>"#,
            self.left
        );
        let ticks = (self.max_epoch as usize).min(5);
        for k in 0..=ticks {
            let e = self.max_epoch as usize * k / ticks.max(1);
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{e}</text>"#,
                self.x(e),
                TOP + PANEL_H + 15.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">epoch</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{title}</text>"#,
            self.left + PANEL_W / 2.0,
            TOP + PANEL_H + 30.0,
            self.left + PANEL_W / 2.0,
            TOP - 10.0
        );
    }
}

/// A polyline through `pts` (nothing for fewer than one point).
fn polyline(pts: &[(f64, f64)], colour: &str, dashed: bool) -> String {
    if pts.is_empty() {
        return String::new();
    }
    let p: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
    let dash = if dashed {
        r#" stroke-dasharray="6,4""#
    } else {
        ""
    };
    format!(
        r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
        p.join(" ")
    )
}

/// The two-panel SVG of `series` (see the module docs).
pub fn compare_curves_svg(series: &[Series<'_>]) -> String {
    let max_epoch = series
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.epoch))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_loss = series
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.train_loss))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.05;
    let loss = Panel {
        left: MARGIN_L,
        max_epoch,
        y_max: max_loss,
    };
    let acc = Panel {
        left: MARGIN_L + PANEL_W + GAP,
        max_epoch,
        y_max: 1.0,
    };
    let width = MARGIN_L + 2.0 * PANEL_W + GAP + 20.0;
    let height = TOP + PANEL_H + BOTTOM;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    loss.frame(&mut s, "training loss", |v| format!("{v:.2}"));
    acc.frame(&mut s, "test accuracy (solid), worst group (dashed)", |v| {
        format!("{:.0}%", 100.0 * v)
    });
    for se in series {
        let pts = |p: &Panel, f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            se.records
                .iter()
                .filter_map(|r| {
                    f(r).filter(|v| v.is_finite())
                        .map(|v| (p.x(r.epoch), p.y(v)))
                })
                .collect()
        };
        s.push_str(&polyline(
            &pts(&loss, &|r| Some(r.train_loss)),
            se.colour,
            false,
        ));
        s.push_str(&polyline(&pts(&acc, &|r| r.top1), se.colour, false));
        s.push_str(&polyline(
            &pts(&acc, &|r| r.worst_group_acc),
            se.colour,
            true,
        ));
        s.push('\n');
    }
    for (k, se) in series.iter().enumerate() {
        let x = MARGIN_L + 140.0 * k as f64;
        let y = height - 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
            y - 4.0,
            x + 24.0,
            y - 4.0,
            se.colour,
            x + 30.0,
            escape(se.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, top1: Option<f64>, worst: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            step: epoch,
            train_loss: 1.0 / (1.0 + epoch as f64),
            lr: 0.1,
            top1,
            best_top1: None,
            best_epoch: None,
            mean_class_acc: None,
            worst_group_acc: worst,
            group_acc: None,
            map: None,
            seconds: 0.0,
            data_wait_fraction: 0.0,
            combined: 0,
            bad_samples: 0,
        }
    }

    #[test]
    fn one_loss_accuracy_and_worst_group_line_per_run_with_groups() {
        let a: Vec<_> = (0..3).map(|e| record(e, Some(0.5), Some(0.2))).collect();
        let b: Vec<_> = (0..3).map(|e| record(e, Some(0.7), None)).collect();
        let svg = compare_curves_svg(&[
            Series {
                label: "vanilla",
                colour: "#111111",
                records: &a,
            },
            Series {
                label: "De-DA <p>",
                colour: "#222222",
                records: &b,
            },
        ]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // vanilla: loss, top-1, worst group; De-DA: loss, top-1 (no groups → no dashed line).
        assert_eq!(
            svg.matches(r##"stroke="#111111" stroke-width="2""##)
                .count(),
            3
        );
        assert_eq!(
            svg.matches(r##"stroke="#222222" stroke-width="2""##)
                .count(),
            2
        );
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        assert!(svg.contains("De-DA &lt;p&gt;"));
        // 50 % sits halfway up the accuracy panel.
        let mid = TOP + PANEL_H / 2.0;
        assert!(svg.contains(&format!(",{mid:.1}")), "{svg}");
    }
}
