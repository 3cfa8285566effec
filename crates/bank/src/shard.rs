//! Shards: `i/n` splits of one stage's work, each written by its own process.
use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (written `"i/n"`); its records go to `shards/<i>-of-<n>.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards, at least 1.
    pub count: u32,
}

impl Shard {
    /// A validated shard.
    ///
    /// # Errors
    /// [`Error::InvalidShard`] unless `count > 0` and `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Shard> {
        let invalid = |reason: &str| Error::InvalidShard {
            text: format!("{index}/{count}"),
            reason: reason.into(),
        };
        if count == 0 {
            return Err(invalid("the shard count must be at least 1"));
        }
        if index >= count {
            return Err(invalid("the shard index must be below the count"));
        }
        Ok(Shard { index, count })
    }

    /// Whether work item `k` (e.g. a sample index) belongs to this shard (`k mod n == i`).
    pub fn owns(&self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index)
    }

    /// The shard manifest's file name, `<i>-of-<n>.jsonl`.
    pub fn file_name(&self) -> String {
        format!("{}-of-{}.jsonl", self.index, self.count)
    }

    /// Parses a shard manifest's file name; `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<Shard> {
        let stem = name.strip_suffix(".jsonl")?;
        let (i, n) = stem.split_once("-of-")?;
        Shard::new(i.parse().ok()?, n.parse().ok()?).ok()
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Shard> {
        let invalid = |reason: &str| Error::InvalidShard {
            text: s.into(),
            reason: reason.into(),
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(|| invalid("no '/'"))?;
        let index = i
            .trim()
            .parse()
            .map_err(|_| invalid("the index is not a number"))?;
        let count = n
            .trim()
            .parse()
            .map_err(|_| invalid("the count is not a number"))?;
        Shard::new(index, count).map_err(|e| match e {
            Error::InvalidShard { reason, .. } => invalid(&reason),
            other => other,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s: Shard = "1/4".parse().unwrap();
        assert_eq!(s, Shard { index: 1, count: 4 });
        assert_eq!(s.to_string(), "1/4");
        assert_eq!(Shard::from_file_name(&s.file_name()), Some(s));
        assert!(s.owns(5) && !s.owns(4));
    }

    #[test]
    fn refuses_bad_specs() {
        for bad in ["2/2", "0/0", "a/2", "1", "-1/2", "1/2/3", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.to_string().contains("invalid shard"), "{bad}: {err}");
        }
        assert_eq!(Shard::from_file_name("3-of-2.jsonl"), None);
        assert_eq!(Shard::from_file_name(".0-of-2.jsonl.tmp9"), None);
    }
}
