//! One method against its baseline on the same seed, as the demo reports it: a small table
//! (test accuracy and worst-group accuracy, and the difference) and a verdict sentence that
//! says plainly when the method does not win.
use super::RunRow;
use std::fmt::Write as _;

/// A baseline run and a method run to compare (same seed, same data).
#[derive(Debug, Clone, Copy)]
pub struct HeadToHead<'a> {
    /// The baseline's label (e.g. "vanilla") and row.
    pub baseline: (&'a str, &'a RunRow),
    /// The method's label (e.g. "De-DA") and row.
    pub method: (&'a str, &'a RunRow),
}

/// One compared metric: its name and how to read it from a row.
struct Metric {
    name: &'static str,
    get: fn(&RunRow) -> Option<f64>,
}

const METRICS: [Metric; 2] = [
    Metric {
        name: "test accuracy",
        get: |r| Some(r.last_top1),
    },
    Metric {
        name: "worst-group accuracy",
        get: |r| r.last_worst_group,
    },
];

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.1} %", 100.0 * x))
}

fn points(d: Option<f64>) -> String {
    d.map_or("–".into(), |x| format!("{:+.1} pts", 100.0 * x))
}

impl HeadToHead<'_> {
    /// `method − baseline` of a metric, when both have it.
    fn diff(&self, m: &Metric) -> Option<f64> {
        Some((m.get)(self.method.1)? - (m.get)(self.baseline.1)?)
    }

    /// The markdown table: one line per run (last-epoch numbers) and the difference.
    pub fn table(&self) -> String {
        let mut md = String::from("| run |");
        for m in &METRICS {
            let _ = write!(md, " {} |", m.name);
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(METRICS.len()));
        md.push('\n');
        for (label, row) in [self.baseline, self.method] {
            let _ = write!(md, "| {label} |");
            for m in &METRICS {
                let _ = write!(md, " {} |", pct((m.get)(row)));
            }
            md.push('\n');
        }
        let _ = write!(md, "| {} − {} |", self.method.0, self.baseline.0);
        for m in &METRICS {
            let _ = write!(md, " {} |", points(self.diff(m)));
        }
        md.push('\n');
        md
    }

    /// Per-group accuracy of both runs (empty when the rows have no groups).
    pub fn group_table(&self, group_names: &[String]) -> String {
        let (Some(b), Some(m)) = (&self.baseline.1.last_groups, &self.method.1.last_groups) else {
            return String::new();
        };
        let mut md = String::from("| run |");
        for g in group_names {
            let _ = write!(md, " {g} |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(group_names.len()));
        md.push('\n');
        for (label, accs) in [(self.baseline.0, b), (self.method.0, m)] {
            let _ = write!(md, "| {label} |");
            for g in 0..group_names.len() {
                let _ = write!(md, " {} |", pct(accs.get(g).copied().flatten()));
            }
            md.push('\n');
        }
        md
    }

    /// One sentence: whether the method beats the baseline on every metric of the table, and
    /// if not, on which it does not (ties count as not winning).
    pub fn verdict(&self) -> String {
        let (b, m) = (self.baseline.0, self.method.0);
        let seed = self.method.1.seed;
        let mut won = Vec::new();
        let mut lost = Vec::new();
        for metric in &METRICS {
            match self.diff(metric) {
                Some(d) if d > 0.0 => won.push(format!("{} ({})", metric.name, points(Some(d)))),
                Some(d) => lost.push(format!("{} ({})", metric.name, points(Some(d)))),
                None => {}
            }
        }
        if lost.is_empty() && !won.is_empty() {
            format!("On seed {seed}, {m} beats {b} on {}.", won.join(" and "))
        } else if won.is_empty() {
            format!(
                "On seed {seed}, {m} does **not** beat {b}: {}.",
                if lost.is_empty() {
                    "no metric to compare".to_string()
                } else {
                    lost.join(", ")
                }
            )
        } else {
            format!(
                "On seed {seed}, {m} beats {b} on {} but **not** on {}.",
                won.join(" and "),
                lost.join(" and ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, top1: f64, worst: Option<f64>) -> RunRow {
        RunRow {
            run: "r".into(),
            seed,
            last_top1: top1,
            best_top1: top1,
            last_mean_class: None,
            last_worst_group: worst,
            last_groups: worst.map(|w| vec![Some(top1), Some(w), None, Some(1.0)]),
            final_train_loss: 0.1,
            seconds: 1.0,
        }
    }

    fn h2h<'a>(b: &'a RunRow, m: &'a RunRow) -> HeadToHead<'a> {
        HeadToHead {
            baseline: ("vanilla", b),
            method: ("De-DA", m),
        }
    }

    #[test]
    fn table_has_both_runs_and_the_difference() {
        let (b, m) = (row(3, 0.625, Some(0.25)), row(3, 0.75, Some(0.5)));
        let md = h2h(&b, &m).table();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 5, "{md}");
        assert_eq!(lines[2], "| vanilla | 62.5 % | 25.0 % |");
        assert_eq!(lines[3], "| De-DA | 75.0 % | 50.0 % |");
        assert_eq!(lines[4], "| De-DA − vanilla | +12.5 pts | +25.0 pts |");
        let groups: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let g = h2h(&b, &m).group_table(&groups);
        assert!(
            g.contains("| vanilla | 62.5 % | 25.0 % | – | 100.0 % |"),
            "{g}"
        );
        assert_eq!(
            h2h(&b, &m).verdict(),
            "On seed 3, De-DA beats vanilla on test accuracy (+12.5 pts) and worst-group \
             accuracy (+25.0 pts)."
        );
    }

    #[test]
    fn verdict_says_when_the_method_does_not_win() {
        let b = row(0, 0.75, Some(0.5));
        let worse = row(0, 0.5, Some(0.25));
        let v = h2h(&b, &worse).verdict();
        assert!(v.contains("does **not** beat vanilla"), "{v}");
        assert!(v.contains("test accuracy (-25.0 pts)"), "{v}");
        let mixed = row(0, 0.875, Some(0.5));
        let v = h2h(&b, &mixed).verdict();
        assert!(v.contains("beats vanilla on test accuracy (+12.5 pts) but **not** on worst-group accuracy (+0.0 pts)"), "{v}");
        let no_groups = (row(0, 0.5, None), row(0, 0.6, None));
        let v = h2h(&no_groups.0, &no_groups.1).verdict();
        assert!(
            v.ends_with("beats vanilla on test accuracy (+10.0 pts)."),
            "{v}"
        );
        assert_eq!(h2h(&no_groups.0, &no_groups.1).group_table(&[]), "");
    }
}
