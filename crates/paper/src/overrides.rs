//! `--set key.path=value` overrides of a recipe, for running a table's recipes at a smaller
//! scale (another data set, fewer epochs, a smaller input) without editing them.
use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// One override: a dotted key path into the recipe's TOML and the value to put there, written
/// `KEY.PATH=VALUE`, or `METHOD:KEY.PATH=VALUE` to touch only the recipes of one method (e.g.
/// `deda:method.combine.p_syn=0.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Only recipes whose `method.name` is this (all recipes if `None`).
    pub method: Option<String>,
    /// E.g. `["train", "epochs"]`.
    pub path: Vec<String>,
    /// The new value (parsed as TOML; text that is not a TOML value is a string).
    pub value: toml::Value,
}

impl FromStr for Override {
    type Err = Error;
    fn from_str(s: &str) -> Result<Override> {
        let bad = |reason: &str| Error::Override {
            text: s.to_string(),
            reason: reason.to_string(),
        };
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| bad("expected [METHOD:]KEY.PATH=VALUE"))?;
        let (method, key) = match key.split_once(':') {
            Some((m, k)) if !m.trim().is_empty() => (Some(m.trim().to_string()), k),
            Some(_) => return Err(bad("empty method before ':'")),
            None => (None, key),
        };
        let path: Vec<String> = key.trim().split('.').map(str::to_string).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(bad("empty key segment"));
        }
        Ok(Override {
            method,
            path,
            value: parse_value(value.trim()),
        })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.method {
            write!(f, "{m}: ")?;
        }
        write!(f, "{} = {}", self.path.join("."), self.value)
    }
}

/// A TOML value (`3`, `0.5`, `true`, `[150, 225]`, `"x"`), else the text as a string.
fn parse_value(text: &str) -> toml::Value {
    #[derive(serde::Deserialize)]
    struct Wrap {
        v: toml::Value,
    }
    toml::from_str::<Wrap>(&format!("v = {text}"))
        .map(|w| w.v)
        .unwrap_or_else(|_| toml::Value::String(text.to_string()))
}

/// The recipe `text` with every override that applies to its method applied (tables are
/// created as needed); the result keeps no comments.
///
/// # Errors
/// [`Error::Override`] if the recipe does not parse or a key path runs through a non-table.
pub fn apply_overrides(text: &str, overrides: &[Override]) -> Result<String> {
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| Error::Override {
        text: "(recipe)".into(),
        reason: e.to_string(),
    })?;
    let method = doc
        .get("method")
        .and_then(|m| m.get("name"))
        .and_then(toml::Value::as_str)
        .map(str::to_string);
    for o in overrides {
        if o.method.is_some() && o.method != method {
            continue;
        }
        let (last, parents) = o.path.split_last().ok_or_else(|| Error::Override {
            text: o.to_string(),
            reason: "empty key".into(),
        })?;
        let mut table = &mut doc;
        for p in parents {
            let entry = table
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| Error::Override {
                text: o.to_string(),
                reason: format!("{p} is not a table in the recipe"),
            })?;
        }
        table.insert(last.clone(), o.value.clone());
    }
    toml::to_string(&doc).map_err(|e| Error::Override {
        text: "(recipe)".into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_and_create_keys_with_typed_values() {
        let recipe = "# header\n[data]\ndataset = \"cub:a\"\n[train]\nepochs = 300\n";
        let o: Vec<Override> = [
            "data.dataset=cub:data/mini",
            "train.epochs=3",
            "loader.crop=112",
            "optim.schedule.milestones=[2, 3]",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let out: toml::Table = toml::from_str(&apply_overrides(recipe, &o).unwrap()).unwrap();
        assert_eq!(out["data"]["dataset"].as_str(), Some("cub:data/mini"));
        assert_eq!(out["train"]["epochs"].as_integer(), Some(3));
        assert_eq!(out["loader"]["crop"].as_integer(), Some(112));
        assert_eq!(
            out["optim"]["schedule"]["milestones"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn a_method_prefix_limits_an_override_to_that_methods_recipes() {
        let o: Override = "deda:method.combine.p_syn=0.0".parse().unwrap();
        assert_eq!(o.method.as_deref(), Some("deda"));
        let deda = "[method]\nname = \"deda\"\n";
        let out: toml::Table =
            toml::from_str(&apply_overrides(deda, std::slice::from_ref(&o)).unwrap()).unwrap();
        assert_eq!(out["method"]["combine"]["p_syn"].as_float(), Some(0.0));
        let vanilla = "[method]\nname = \"vanilla\"\n";
        let out: toml::Table = toml::from_str(&apply_overrides(vanilla, &[o]).unwrap()).unwrap();
        assert!(out["method"].get("combine").is_none());
        let v: Override = "data.dataset=cub:data/x".parse().unwrap();
        assert_eq!((v.method, v.value.as_str()), (None, Some("cub:data/x")));
    }

    #[test]
    fn bad_overrides_are_named() {
        assert!("train.epochs".parse::<Override>().is_err());
        assert!("train..epochs=1".parse::<Override>().is_err());
        let o: Override = "train.epochs.x=1".parse().unwrap();
        let e = apply_overrides("[train]\nepochs = 3\n", &[o]).unwrap_err();
        assert!(e.to_string().contains("epochs is not a table"), "{e}");
    }
}
