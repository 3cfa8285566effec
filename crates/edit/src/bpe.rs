//! Byte-pair encoding of one pre-token, with merge ranks over vocabulary ids.
//!
//! Same algorithm as `CLIPTokenizer.bpe` / openai/CLIP's `SimpleTokenizer.bpe`: the word is its
//! characters with `</w>` glued to the last one; repeatedly, the adjacent pair with the lowest
//! merge rank is merged everywhere (left to right) until no pair has a rank. Pieces are kept as
//! vocabulary ids: every character piece and every merge result is in the CLIP vocabulary, so
//! pairs of ids stand for pairs of strings one to one.
use std::collections::HashMap;

/// Merge table: `(left id, right id) -> (rank, merged id)`.
#[derive(Debug, Clone, Default)]
pub struct MergeRanks {
    ranks: HashMap<(u32, u32), (u32, u32)>,
}

impl MergeRanks {
    /// Records merge `rank`; a later duplicate pair overrides an earlier one (as a Python dict).
    pub fn insert(&mut self, left: u32, right: u32, rank: u32, merged: u32) {
        self.ranks.insert((left, right), (rank, merged));
    }

    /// Applies the merges to a word given as the ids of its initial pieces.
    pub fn apply(&self, mut word: Vec<u32>) -> Vec<u32> {
        while word.len() > 1 {
            let Some((left, right, merged)) = self.best_pair(&word) else {
                break;
            };
            word = merge_pair(&word, left, right, merged);
        }
        word
    }

    /// The adjacent pair with the lowest rank, if any pair has one.
    fn best_pair(&self, word: &[u32]) -> Option<(u32, u32, u32)> {
        word.windows(2)
            .filter_map(|w| {
                self.ranks
                    .get(&(w[0], w[1]))
                    .map(|&(rank, merged)| (rank, w[0], w[1], merged))
            })
            .min_by_key(|&(rank, ..)| rank)
            .map(|(_, l, r, m)| (l, r, m))
    }
}

/// Replaces every non-overlapping occurrence of `(left, right)`, scanning left to right.
fn merge_pair(word: &[u32], left: u32, right: u32, merged: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if word[i] == left && i + 1 < word.len() && word[i + 1] == right {
            out.push(merged);
            i += 2;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_lowest_rank_first_and_left_to_right() {
        // ids: a=0 b=1 c=2 ab=3 bc=4 abc=5
        let mut m = MergeRanks::default();
        m.insert(1, 2, 0, 4); // b c -> bc (rank 0)
        m.insert(0, 1, 1, 3); // a b -> ab (rank 1)
        m.insert(0, 4, 2, 5); // a bc -> abc
        assert_eq!(m.apply(vec![0, 1, 2]), vec![5]);
        assert_eq!(m.apply(vec![0, 1, 0, 1]), vec![3, 3]);
        assert_eq!(m.apply(vec![1, 1, 1]), vec![1, 1, 1]);
        assert_eq!(m.apply(vec![]), Vec::<u32>::new());
    }
}
