//! Helpers for reading diffusers / transformers `config.json` files: values that may be one
//! integer or one per block, and checks that fields we do not implement keep their defaults.
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A config value that is either shared by all blocks or given per block
/// (`attention_head_dim: 8` or `[5, 10, 20, 20]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum PerBlock<T> {
    /// One value for every block.
    One(T),
    /// One value per block.
    Each(Vec<T>),
}

impl<T: Clone> PerBlock<T> {
    /// The value of each of `n` blocks; a list of the wrong length is a config error naming `field`.
    pub fn expand(&self, n: usize, field: &str) -> std::result::Result<Vec<T>, String> {
        match self {
            PerBlock::One(v) => Ok(vec![v.clone(); n]),
            PerBlock::Each(v) if v.len() == n => Ok(v.clone()),
            PerBlock::Each(v) => Err(format!(
                "{field} has {} entries but there are {n} blocks",
                v.len()
            )),
        }
    }
}

/// Reads and parses a JSON config file, naming the file in errors.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Config(format!("cannot parse {}: {e}", path.display())))
}

/// For each `(field, default)`, a problem if the raw config sets `field` to something else
/// (numbers compare by value, so `1` equals `1.0`). Absent fields take the default.
pub fn unsupported_fields(raw: &Map<String, Value>, defaults: &[(&str, Value)]) -> Vec<String> {
    defaults
        .iter()
        .filter_map(|(field, default)| {
            let v = raw.get(*field)?;
            let same = match (v.as_f64(), default.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => v == default,
            };
            (!same).then(|| format!("{field} = {v} is not supported (only {default})"))
        })
        .collect()
}

/// `Ok(())` if there is no problem, else a config error listing all of them, prefixed by `what`.
pub fn problems_to_result(what: &str, problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(format!("{what}: {}", problems.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn per_block_expands_and_checks_length() {
        let one: PerBlock<i64> = serde_json::from_value(json!(8)).unwrap();
        assert_eq!(one.expand(3, "x").unwrap(), vec![8, 8, 8]);
        let each: PerBlock<i64> = serde_json::from_value(json!([1, 2])).unwrap();
        assert_eq!(each.expand(2, "x").unwrap(), vec![1, 2]);
        assert!(each.expand(3, "x").unwrap_err().contains("2 entries"));
    }

    #[test]
    fn unsupported_fields_compare_numbers_by_value() {
        let raw = json!({"a": 1, "b": "other", "c": null})
            .as_object()
            .unwrap()
            .clone();
        let p = unsupported_fields(
            &raw,
            &[
                ("a", json!(1.0)),
                ("b", json!("default")),
                ("c", Value::Null),
                ("d", json!(3)),
            ],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("b ="));
    }
}
