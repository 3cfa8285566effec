//! Collecting the runs of an experiment into a table: one row per run name with the mean ± std
//! over seeds of each metric, as markdown, CSV and an SVG bar chart.
use deda_train::RunSummary;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The numbers kept from one finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// Run name (method or variant).
    pub run: String,
    /// Run seed.
    pub seed: u64,
    /// Top-1 at the last epoch.
    pub last_top1: f64,
    /// Best top-1 over the evaluated epochs (test-selected, as the paper reports).
    pub best_top1: f64,
    /// Mean per-class accuracy at the last epoch.
    pub last_mean_class: Option<f64>,
    /// Worst-group accuracy at the last epoch (sets with groups).
    pub last_worst_group: Option<f64>,
    /// Per-group accuracy at the last epoch (sets with groups).
    pub last_groups: Option<Vec<Option<f64>>>,
    /// Final mean training loss.
    pub final_train_loss: f64,
    /// Seconds of training (this call; 0 when the run was already finished).
    pub seconds: f64,
}

impl RunRow {
    /// The row of a finished run; `None` if the run never evaluated.
    pub fn from_summary(run: &str, seed: u64, s: &RunSummary) -> Option<RunRow> {
        let eval = s.last_eval.as_ref()?;
        Some(RunRow {
            run: run.to_string(),
            seed,
            last_top1: eval.top1,
            best_top1: s.best_top1?,
            last_mean_class: eval.mean_class_acc,
            last_worst_group: eval.worst_group_acc,
            last_groups: eval.per_group.clone(),
            final_train_loss: s.final_train_loss,
            seconds: s.seconds,
        })
    }
}

/// Mean and sample standard deviation (None for fewer than two values).
pub fn mean_std(values: &[f64]) -> Option<(f64, Option<f64>)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.len() > 1)
        .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, std))
}

/// Reads one metric from a row (None: the row lacks it).
type MetricOf = Box<dyn Fn(&RunRow) -> Option<f64>>;

/// A metric column: its header and how to read it from a row.
struct Column {
    header: String,
    get: MetricOf,
}

fn columns(rows: &[RunRow], group_names: &[String]) -> Vec<Column> {
    let mut cols = vec![
        Column {
            header: "top-1 (last)".into(),
            get: Box::new(|r: &RunRow| Some(r.last_top1)),
        },
        Column {
            header: "top-1 (best epoch)".into(),
            get: Box::new(|r: &RunRow| Some(r.best_top1)),
        },
    ];
    if rows.iter().any(|r| r.last_worst_group.is_some()) {
        cols.push(Column {
            header: "worst group (last)".into(),
            get: Box::new(|r: &RunRow| r.last_worst_group),
        });
        for (g, name) in group_names.iter().enumerate() {
            cols.push(Column {
                header: name.clone(),
                get: Box::new(move |r: &RunRow| {
                    r.last_groups
                        .as_ref()
                        .and_then(|v| v.get(g).copied().flatten())
                }),
            });
        }
    } else {
        cols.push(Column {
            header: "mean class acc (last)".into(),
            get: Box::new(|r: &RunRow| r.last_mean_class),
        });
    }
    cols
}

/// Run names in first-seen order.
fn run_names(rows: &[RunRow]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        if !names.contains(&r.run) {
            names.push(r.run.clone());
        }
    }
    names
}

fn cell(values: &[f64]) -> String {
    match mean_std(values) {
        None => "–".into(),
        Some((m, Some(s))) => format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * s),
        Some((m, None)) => format!("{:.1}", 100.0 * m),
    }
}

/// The markdown table: one line per run name, mean ± std (in %) over its seeds.
pub fn markdown_table(rows: &[RunRow], group_names: &[String]) -> String {
    let cols = columns(rows, group_names);
    let mut md = String::from("| run | seeds |");
    for c in &cols {
        let _ = write!(md, " {} |", c.header);
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(cols.len()));
    md.push('\n');
    for name in run_names(rows) {
        let mine: Vec<&RunRow> = rows.iter().filter(|r| r.run == name).collect();
        let _ = write!(md, "| {name} | {} |", mine.len());
        for c in &cols {
            let v: Vec<f64> = mine.iter().filter_map(|r| (c.get)(r)).collect();
            let _ = write!(md, " {} |", cell(&v));
        }
        md.push('\n');
    }
    md
}

/// One CSV line per run.
pub fn csv(rows: &[RunRow], group_names: &[String]) -> String {
    let cols = columns(rows, group_names);
    let mut out = String::from("run,seed");
    for c in &cols {
        let _ = write!(out, ",{}", c.header.replace(',', ";"));
    }
    out.push_str(",final_train_loss,seconds\n");
    for r in rows {
        let _ = write!(out, "{},{}", r.run, r.seed);
        for c in &cols {
            let _ = write!(
                out,
                ",{}",
                (c.get)(r).map_or(String::new(), |v| format!("{v:.6}"))
            );
        }
        let _ = writeln!(out, ",{:.6},{:.1}", r.final_train_loss, r.seconds);
    }
    out
}

/// A grouped bar chart (one group per run name, one bar per metric: top-1 and the worst group
/// or mean class accuracy), mean with ± std whiskers and every seed as a dot.
pub fn bar_chart_svg(rows: &[RunRow], group_names: &[String], title: &str) -> String {
    let cols = columns(rows, group_names);
    let shown: Vec<&Column> = cols
        .iter()
        .filter(|c| c.header != "top-1 (best epoch)")
        .take(2)
        .collect();
    let names = run_names(rows);
    let (w, h, left, top, bottom) = (160.0 * names.len() as f64 + 120.0, 360.0, 60.0, 40.0, 60.0);
    let plot_h = h - top - bottom;
    let y = |v: f64| top + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let colours = ["#4477aa", "#ee6677"];
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>
"#,
        w / 2.0,
        xml_escape(title)
    );
    for k in 0..=10 {
        let v = k as f64 / 10.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y0:.1}" y2="{y0:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}%</text>"##,
            w - 20.0,
            left - 6.0,
            y(v) + 4.0,
            k * 10,
            y0 = y(v)
        );
    }
    for (i, name) in names.iter().enumerate() {
        let x0 = left + 20.0 + 160.0 * i as f64;
        let mine: Vec<&RunRow> = rows.iter().filter(|r| &r.run == name).collect();
        for (j, c) in shown.iter().enumerate() {
            let v: Vec<f64> = mine.iter().filter_map(|r| (c.get)(r)).collect();
            let Some((m, sd)) = mean_std(&v) else {
                continue;
            };
            let bx = x0 + 60.0 * j as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{bx:.1}" y="{:.1}" width="50" height="{:.1}" fill="{}"/>"#,
                y(m),
                y(0.0) - y(m),
                colours[j % colours.len()]
            );
            if let Some(sd) = sd {
                let _ = writeln!(
                    s,
                    r#"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="black"/>"#,
                    y(m - sd),
                    y(m + sd),
                    cx = bx + 25.0
                );
            }
            for p in &v {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="black" fill-opacity="0.6"/>"#,
                    bx + 25.0,
                    y(*p)
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + 55.0,
            h - bottom + 18.0,
            xml_escape(name)
        );
    }
    for (j, c) in shown.iter().enumerate() {
        let lx = left + 180.0 * j as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            h - 24.0,
            colours[j % colours.len()],
            lx + 16.0,
            h - 14.0,
            xml_escape(&c.header)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, seed: u64, top1: f64, worst: Option<f64>) -> RunRow {
        RunRow {
            run: run.into(),
            seed,
            last_top1: top1,
            best_top1: top1 + 0.01,
            last_mean_class: Some(top1),
            last_worst_group: worst,
            last_groups: worst.map(|w| vec![Some(w), Some(top1), None, Some(1.0)]),
            final_train_loss: 0.5,
            seconds: 1.0,
        }
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[0.5, 0.7]).unwrap();
        assert!((m - 0.6).abs() < 1e-12);
        assert!((s.unwrap() - 0.1414213562).abs() < 1e-9);
        assert_eq!(mean_std(&[0.3]), Some((0.3, None)));
        assert_eq!(mean_std(&[]), None);
    }

    #[test]
    fn table_has_a_line_per_run_with_mean_and_std() {
        let groups: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let rows = vec![
            row("vanilla", 0, 0.5, Some(0.2)),
            row("vanilla", 1, 0.7, Some(0.4)),
            row("deda", 0, 0.8, Some(0.6)),
        ];
        let md = markdown_table(&rows, &groups);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 4, "{md}");
        assert!(
            lines[0].contains("worst group") && lines[0].contains("| d |"),
            "{md}"
        );
        assert!(
            lines[2].starts_with("| vanilla | 2 | 60.0 ± 14.1 |"),
            "{md}"
        );
        assert!(lines[3].starts_with("| deda | 1 | 80.0 |"), "{md}");
        // group c is absent in every run
        assert!(lines[2].contains("| – |"), "{md}");
        let csv = csv(&rows, &groups);
        assert_eq!(csv.lines().count(), 4);
        let svg = bar_chart_svg(&rows, &groups, "t");
        assert_eq!(svg.matches("<rect x=").count(), 4 + 2, "{svg}");
    }
}
