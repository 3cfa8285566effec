//! A collected table as markdown (the paper's layout, ours beside the paper's number) and CSV.
use crate::runs::{CellResult, CellState, TableResult};
use std::fmt::Write;

/// The table in the paper's layout: each cell reads `ours (paper)`, with `± std` and the number
/// of seeds where several runs finished, followed by a legend and the list of runs. `notes`
/// (e.g. the overrides the runs were made with) are listed under the title.
pub fn render_markdown(t: &TableResult, notes: &[String]) -> String {
    let columns = t.layout.columns();
    let mut md = String::new();
    let _ = writeln!(md, "# {} — ours beside the paper\n", t.layout.id);
    let _ = writeln!(md, "Source of the paper's numbers: {}\n", t.layout.source);
    for n in notes {
        let _ = writeln!(md, "- {n}");
    }
    if !notes.is_empty() {
        md.push('\n');
    }
    let _ = writeln!(md, "| | {} |", columns.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(columns.len()));
    for row in t.layout.rows() {
        let cells: Vec<String> = columns
            .iter()
            .map(|col| {
                t.cells
                    .iter()
                    .find(|c| c.cell.row == row && c.cell.column == *col)
                    .map_or(String::new(), cell_text)
            })
            .collect();
        let _ = writeln!(md, "| {row} | {} |", cells.join(" | "));
    }
    let (done, total) = progress(t);
    let _ = writeln!(
        md,
        "\n{done} of {total} cells with a recipe are done. Each cell: **ours** (paper), in %; \
         `± s (n)`: standard deviation over n finished seeds; `… x @ e/E`: still running, best so \
         far after e of E epochs; `not run`: the recipe exists, no run yet; `no recipe`: the \
         project cannot produce this cell yet; `–`: not given in the paper's text.\n"
    );
    let _ = writeln!(md, "| cell | recipe | run folder | seed | epochs | value |");
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for c in &t.cells {
        for r in &c.runs {
            let _ = writeln!(
                md,
                "| {} / {} | {} | `{}` | {} | {}/{} | {} |",
                c.cell.row,
                c.cell.column,
                c.cell
                    .recipe
                    .as_ref()
                    .map_or(String::new(), |r| r.to_string()),
                r.dir.display(),
                r.seed.map_or("–".into(), |s| s.to_string()),
                r.epochs_done,
                r.epochs_total.map_or("?".into(), |e| e.to_string()),
                r.value.map_or("–".into(), |v| format!("{v:.2}"))
            );
        }
    }
    md
}

/// Cells whose recipe exists that have a finished run, and cells whose recipe exists.
fn progress(t: &TableResult) -> (usize, usize) {
    let with_recipe = t
        .cells
        .iter()
        .filter(|c| !matches!(c.state, CellState::NoRecipe | CellState::Derived));
    let total = with_recipe.clone().count();
    let done = with_recipe.filter(|c| c.state == CellState::Done).count();
    (done, total)
}

fn paper_text(c: &CellResult) -> String {
    c.cell.paper.map_or("–".into(), |p| format!("{p:.2}"))
}

fn cell_text(c: &CellResult) -> String {
    let paper = paper_text(c);
    let ours = match (c.state, c.mean()) {
        (CellState::Done | CellState::Derived, Some(m)) => match c.std() {
            Some(s) => format!("**{m:.2}** ± {s:.2} ({})", c.values.len()),
            None => format!("**{m:.2}**"),
        },
        (CellState::Derived, None) => "·".into(),
        (CellState::Running, _) => {
            let best = c.running_value().map_or("–".into(), |v| format!("{v:.2}"));
            let r = c.runs.iter().find(|r| !r.complete());
            let (e, total) = r.map_or((0, None), |r| (r.epochs_done, r.epochs_total));
            format!(
                "… {best} @ {e}/{}",
                total.map_or("?".into(), |t| t.to_string())
            )
        }
        (CellState::NotRun, _) => "not run".into(),
        (CellState::RecipeMissing, _) => "recipe missing".into(),
        (CellState::NoRecipe, _) => "no recipe".into(),
        (CellState::Done, None) => "no value".into(),
    };
    format!("{ours} ({paper})")
}

/// One line per cell: `table,row,column,recipe,metric,paper,ours_mean,ours_std,n,state`.
pub fn render_csv(t: &TableResult) -> String {
    let mut out = String::from("table,row,column,recipe,paper,ours_mean,ours_std,n,state\n");
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.4}"));
    for c in &t.cells {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{:?}",
            t.layout.id,
            q(&c.cell.row),
            q(&c.cell.column),
            c.cell
                .recipe
                .as_ref()
                .map_or(String::new(), |r| r.to_string()),
            num(c.cell.paper),
            num(c.mean()),
            num(c.std()),
            c.values.len(),
            c.state
        );
    }
    out
}
