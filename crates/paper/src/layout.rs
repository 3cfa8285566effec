//! Table layouts: which cell comes from which recipe, what is read from its run, and what the
//! paper reports there.
use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A table or figure of the paper that `configs/paper/` holds recipes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableId {
    /// Table 2: from scratch at 448 px, three networks × CUB / Aircraft / Cars.
    Table2,
    /// Table 3: ViT-B/16 fine-tuning at 384 px.
    Table3,
    /// Table 4: 10-shot CUB from scratch.
    Table4,
    /// Table 5: Waterbirds, accuracy per group.
    Table5,
    /// Fig. 5a: multi-label VOC 2007, mAP.
    Fig5a,
    /// Fig. 7: with RandAugment.
    Fig7,
    /// Fig. 8: p_aug / p_syn / p_mix / strength sweeps.
    Fig8,
    /// Fig. 9: module ablation.
    Fig9,
    /// Table 8: expansion multiplier.
    Table8,
}

impl TableId {
    /// Every table, in the paper's order.
    pub const ALL: [TableId; 9] = [
        TableId::Table2,
        TableId::Table3,
        TableId::Table4,
        TableId::Table5,
        TableId::Fig5a,
        TableId::Fig7,
        TableId::Fig8,
        TableId::Fig9,
        TableId::Table8,
    ];

    /// The name used on the command line and as the folder of its recipes (`table2`, `fig5a`).
    pub fn name(self) -> &'static str {
        match self {
            TableId::Table2 => "table2",
            TableId::Table3 => "table3",
            TableId::Table4 => "table4",
            TableId::Table5 => "table5",
            TableId::Fig5a => "fig5a",
            TableId::Fig7 => "fig7",
            TableId::Fig8 => "fig8",
            TableId::Fig9 => "fig9",
            TableId::Table8 => "table8",
        }
    }

    /// The embedded layout (`configs/paper_tables/<name>.csv`).
    fn layout_text(self) -> &'static str {
        match self {
            TableId::Table2 => include_str!("../../../configs/paper_tables/table2.csv"),
            TableId::Table3 => include_str!("../../../configs/paper_tables/table3.csv"),
            TableId::Table4 => include_str!("../../../configs/paper_tables/table4.csv"),
            TableId::Table5 => include_str!("../../../configs/paper_tables/table5.csv"),
            TableId::Fig5a => include_str!("../../../configs/paper_tables/fig5a.csv"),
            TableId::Fig7 => include_str!("../../../configs/paper_tables/fig7.csv"),
            TableId::Fig8 => include_str!("../../../configs/paper_tables/fig8.csv"),
            TableId::Fig9 => include_str!("../../../configs/paper_tables/fig9.csv"),
            TableId::Table8 => include_str!("../../../configs/paper_tables/table8.csv"),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TableId {
    type Err = Error;
    fn from_str(s: &str) -> Result<TableId> {
        TableId::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| Error::UnknownTable {
                name: s.to_string(),
                known: TableId::ALL.map(TableId::name).join(", "),
            })
    }
}

/// What a cell reports from its run(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// Best test top-1 over the evaluated epochs (the paper reports the best epoch).
    Top1,
    /// Best test mAP over the evaluated epochs.
    Map,
    /// Accuracy of one group (by name, e.g. `waterbird_water`) at the epoch of the best top-1.
    Group(String),
    /// The mean of the row's other cells (the tables' "Avg." column).
    Mean,
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Metric, String> {
        match s {
            "top1" => Ok(Metric::Top1),
            "map" => Ok(Metric::Map),
            "mean" => Ok(Metric::Mean),
            _ => match s.strip_prefix("group:") {
                Some(g) if !g.is_empty() => Ok(Metric::Group(g.to_string())),
                _ => Err(format!(
                    "unknown metric {s:?}: use top1, map, mean or group:NAME"
                )),
            },
        }
    }
}

/// The recipe of a cell: `configs/paper/<table>/<stem>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipeRef {
    /// The table whose folder holds the recipe (usually the cell's own table).
    pub table: TableId,
    /// The recipe's file stem, e.g. `cub_resnet18_deda`.
    pub stem: String,
}

impl RecipeRef {
    /// The recipe file under `recipes` (the folder holding `table2/`, `table3/`, …).
    pub fn path(&self, recipes: &Path) -> PathBuf {
        recipes
            .join(self.table.name())
            .join(format!("{}.toml", self.stem))
    }

    /// The run folder of seed `seed` when the recipe's own seed is `recipe_seed`: the
    /// recipe's folder for its own seed, `…_seed<N>` for any other.
    pub fn run_dir_for_seed(&self, runs: &Path, seed: u64, recipe_seed: u64) -> PathBuf {
        self.run_dir(runs, (seed != recipe_seed).then_some(seed))
    }

    /// The run folder of this recipe under `runs`: `<table>_<stem>` for the recipe's own seed,
    /// `<table>_<stem>_seed<N>` for seed `N` (the name the recipe headers' commands use).
    pub fn run_dir(&self, runs: &Path, seed: Option<u64>) -> PathBuf {
        let base = format!("{}_{}", self.table.name(), self.stem);
        match seed {
            None => runs.join(base),
            Some(s) => runs.join(format!("{base}_seed{s}")),
        }
    }
}

impl fmt::Display for RecipeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.table, self.stem)
    }
}

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Row label (a method, or a setting).
    pub row: String,
    /// Column label.
    pub column: String,
    /// The recipe that produces it; `None` where the project has none yet.
    pub recipe: Option<RecipeRef>,
    /// What is read from the run.
    pub metric: Metric,
    /// The paper's value (%), where the text gives it.
    pub paper: Option<f64>,
}

/// A table's cells in the paper's order, and where its numbers come from.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLayout {
    /// Which table.
    pub id: TableId,
    /// The layout file's leading comment: where the paper's numbers come from.
    pub source: String,
    /// Every cell, row by row.
    pub cells: Vec<Cell>,
}

impl TableLayout {
    /// The embedded layout of `id`.
    ///
    /// # Errors
    /// [`Error::Layout`] if the embedded file does not parse (a build-time mistake, caught by
    /// the crate's tests).
    pub fn builtin(id: TableId) -> Result<TableLayout> {
        TableLayout::parse(id, id.layout_text())
    }

    /// Parses a layout: `#` comment lines (the first is the source), a header
    /// `row,column,recipe,metric,paper`, then one cell per line.
    ///
    /// # Errors
    /// [`Error::Layout`] naming the line.
    pub fn parse(id: TableId, text: &str) -> Result<TableLayout> {
        let bad = |line: usize, reason: String| Error::Layout {
            table: id.name().to_string(),
            line,
            reason,
        };
        let mut source = String::new();
        let mut header_seen = false;
        let mut cells = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if let Some(comment) = line.strip_prefix('#') {
                if source.is_empty() {
                    source = comment.trim().to_string();
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let fields = deda_data::split_csv_line(line)
                .ok_or_else(|| bad(n, "unterminated quote".into()))?;
            if !header_seen {
                if fields != ["row", "column", "recipe", "metric", "paper"] {
                    return Err(bad(
                        n,
                        format!(
                            "expected the header row,column,recipe,metric,paper, found {line:?}"
                        ),
                    ));
                }
                header_seen = true;
                continue;
            }
            let [row, column, recipe, metric, paper] = <[String; 5]>::try_from(fields)
                .map_err(|f| bad(n, format!("expected 5 fields, found {}", f.len())))?;
            cells.push(Cell {
                recipe: parse_recipe(id, &recipe).map_err(|r| bad(n, r))?,
                metric: metric.parse().map_err(|r| bad(n, r))?,
                paper: parse_paper(&paper).map_err(|r| bad(n, r))?,
                row,
                column,
            });
        }
        if !header_seen {
            return Err(bad(0, "no header line".into()));
        }
        Ok(TableLayout { id, source, cells })
    }

    /// Row labels in order of first appearance.
    pub fn rows(&self) -> Vec<&str> {
        first_appearances(self.cells.iter().map(|c| c.row.as_str()))
    }

    /// Column labels in order of first appearance.
    pub fn columns(&self) -> Vec<&str> {
        first_appearances(self.cells.iter().map(|c| c.column.as_str()))
    }

    /// The distinct recipes of the table, in cell order.
    pub fn recipes(&self) -> Vec<&RecipeRef> {
        let mut out: Vec<&RecipeRef> = Vec::new();
        for r in self.cells.iter().filter_map(|c| c.recipe.as_ref()) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

fn first_appearances<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in items {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// `stem` (this table's folder), `table/stem` (another table's), or empty (no recipe).
fn parse_recipe(table: TableId, field: &str) -> std::result::Result<Option<RecipeRef>, String> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    let (table, stem) = match field.split_once('/') {
        Some((t, s)) => (t.parse::<TableId>().map_err(|e| e.to_string())?, s),
        None => (table, field),
    };
    if stem.is_empty() || stem.contains(['/', '\\']) || stem.starts_with('.') {
        return Err(format!("recipe {field:?} is not a file stem"));
    }
    Ok(Some(RecipeRef {
        table,
        stem: stem.to_string(),
    }))
}

fn parse_paper(field: &str) -> std::result::Result<Option<f64>, String> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("paper value {field:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_parses_with_its_source_rows_and_columns() {
        let text = "# Table X of the paper.\n# more\nrow,column,recipe,metric,paper\n\
                    A,c1,cub_r_a,top1,1.5\nA,Avg.,,mean,\nB,c1,table2/cub_r_b,group:g,2\n";
        let t = TableLayout::parse(TableId::Table4, text).unwrap();
        assert_eq!(t.source, "Table X of the paper.");
        assert_eq!(t.rows(), ["A", "B"]);
        assert_eq!(t.columns(), ["c1", "Avg."]);
        assert_eq!(t.cells[0].paper, Some(1.5));
        assert_eq!(t.cells[1].recipe, None);
        assert_eq!(t.cells[1].metric, Metric::Mean);
        let b = t.cells[2].recipe.as_ref().unwrap();
        assert_eq!((b.table, b.stem.as_str()), (TableId::Table2, "cub_r_b"));
        assert_eq!(t.cells[2].metric, Metric::Group("g".into()));
        assert_eq!(t.recipes().len(), 2);
    }

    #[test]
    fn bad_lines_are_named() {
        let header = "row,column,recipe,metric,paper\n";
        for (body, needle) in [
            ("A,c,x,top5,1\n", "top5"),
            ("A,c,x,top1,abc\n", "abc"),
            ("A,c,x,top1\n", "5 fields"),
            ("A,c,table2/../x,top1,1\n", "not a file stem"),
            ("A,c,../x,top1,1\n", "unknown table"),
            ("A,c,table9/x,top1,1\n", "table9"),
        ] {
            let e = TableLayout::parse(TableId::Table2, &format!("{header}{body}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("line 2") && e.contains(needle), "{e}");
        }
        let e = TableLayout::parse(TableId::Table2, "a,b\n").unwrap_err();
        assert!(e.to_string().contains("header"), "{e}");
    }

    #[test]
    fn table_names_round_trip_and_unknown_ones_list_the_known() {
        for t in TableId::ALL {
            assert_eq!(t.name().parse::<TableId>().unwrap(), t);
        }
        let e = "table1".parse::<TableId>().unwrap_err().to_string();
        assert!(e.contains("table2") && e.contains("fig9"), "{e}");
    }

    #[test]
    fn run_dirs_follow_the_recipe_headers() {
        let r = RecipeRef {
            table: TableId::Table4,
            stem: "cub10shot_resnet18_deda".into(),
        };
        assert_eq!(
            r.run_dir(Path::new("runs"), None),
            Path::new("runs/table4_cub10shot_resnet18_deda")
        );
        assert_eq!(
            r.run_dir(Path::new("runs"), Some(2)),
            Path::new("runs/table4_cub10shot_resnet18_deda_seed2")
        );
        assert_eq!(
            r.path(Path::new("configs/paper")),
            Path::new("configs/paper/table4/cub10shot_resnet18_deda.toml")
        );
    }
}
