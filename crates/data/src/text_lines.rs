//! Line-oriented annotation files (`images.txt`, `variants.txt`, `trainval.txt`, ...): read
//! once, iterate non-blank lines with their 1-based numbers, and split fields so that every
//! error names the file and line.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A text annotation file held in memory.
#[derive(Debug)]
pub(crate) struct TextFile {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    text: String,
}

impl TextFile {
    /// Reads `path` as UTF-8 text.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(TextFile {
            path: path.to_path_buf(),
            text,
        })
    }

    /// Non-blank lines, trimmed, with their 1-based line numbers.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty())
    }

    /// An [`Error::Parse`] for line `line` of this file.
    pub fn err(&self, line: usize, reason: impl Into<String>) -> Error {
        Error::parse(&self.path, line, reason)
    }

    /// Splits `line` into its first whitespace-separated field and the trimmed rest, both
    /// non-empty.
    pub fn head_rest<'a>(&self, n: usize, line: &'a str) -> Result<(&'a str, &'a str)> {
        match line.split_once(char::is_whitespace) {
            Some((a, b)) if !b.trim().is_empty() => Ok((a, b.trim())),
            _ => Err(self.err(n, format!("expected two fields, got {line:?}"))),
        }
    }

    /// Parses an unsigned integer field of line `n`.
    pub fn int(&self, n: usize, field: &str, what: &str) -> Result<u64> {
        field
            .parse()
            .map_err(|_| self.err(n, format!("{what} {field:?} is not a non-negative integer")))
    }
}

/// Splits one CSV line into fields (RFC 4180 quoting: `"a,b"` and `""` inside quotes).
///
/// Returns `None` for an unterminated quote.
pub fn split_csv_line(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    (!quoted).then_some(fields)
}

/// Column positions of a header row: `find(name)` gives the index or an error naming the
/// file's line 1.
pub(crate) fn column_index(f: &TextFile, header: &[String], name: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| f.err(1, format!("header has no column {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_commas() {
        assert_eq!(
            split_csv_line(r#"1,"a,b",c"#).unwrap(),
            vec!["1", "a,b", "c"]
        );
        assert_eq!(split_csv_line(r#""x""y",z"#).unwrap(), vec!["x\"y", "z"]);
        assert!(split_csv_line(r#""open,1"#).is_none());
    }
}
