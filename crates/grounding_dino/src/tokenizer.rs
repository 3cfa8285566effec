//! The BERT WordPiece tokenizer of `bert-base-uncased`, as transformers' `BertTokenizer` runs it
//! for GroundingDINO (lowercase, accent strip, punctuation split, greedy longest-match WordPiece
//! with `##` continuations, `[CLS] … [SEP]`), and its `decode` for phrases.
//!
//! The vocabulary (`vocab.txt`, one token per line, id = line number) comes from the checkpoint
//! folder.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use unicode_general_category::{get_general_category, GeneralCategory as Gc};
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};
use deda_core::text_clean::clean_text;

/// Words longer than this (in characters) become `[UNK]`, as in transformers' `WordpieceTokenizer`.
const MAX_INPUT_CHARS_PER_WORD: usize = 100;

/// The tokens of a BERT vocabulary with the ids of the special tokens.
#[derive(Debug, Clone)]
pub struct BertTokenizer {
    ids: HashMap<String, i64>,
    tokens: Vec<String>,
    cls: i64,
    sep: i64,
    unk: i64,
}

impl BertTokenizer {
    /// Reads `vocab.txt` (one token per line).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_vocab(text.lines().map(str::to_string).collect(), path)
    }

    /// Builds the tokenizer from the tokens in id order; `origin` names them in errors.
    pub fn from_vocab(tokens: Vec<String>, origin: &Path) -> Result<Self> {
        let ids: HashMap<String, i64> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as i64))
            .collect();
        let find = |t: &str| {
            ids.get(t).copied().ok_or_else(|| Error::Vocab {
                path: PathBuf::from(origin),
                reason: format!("no {t} token"),
            })
        };
        Ok(Self {
            cls: find("[CLS]")?,
            sep: find("[SEP]")?,
            unk: find("[UNK]")?,
            ids,
            tokens,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The ids of `text` framed by `[CLS]` and `[SEP]` (what `tokenizer(text)["input_ids"]` gives).
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let mut out = vec![self.cls];
        for word in basic_tokenize(text) {
            self.wordpiece(&word, &mut out);
        }
        out.push(self.sep);
        out
    }

    /// The tokens of `ids` joined like transformers' `decode` (special tokens kept, `" ##"`
    /// merged, spaces before punctuation cleaned up).
    pub fn decode(&self, ids: &[i64]) -> String {
        let words: Vec<&str> = ids
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.tokens.get(i))
                    .map_or("[UNK]", String::as_str)
            })
            .collect();
        let joined = words.join(" ").replace(" ##", "");
        clean_up_tokenization(joined.trim())
    }

    fn wordpiece(&self, word: &str, out: &mut Vec<i64>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_INPUT_CHARS_PER_WORD {
            out.push(self.unk);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let found = (start + 1..=chars.len()).rev().find_map(|end| {
                let sub: String = chars[start..end].iter().collect();
                let key = if start > 0 { format!("##{sub}") } else { sub };
                self.ids.get(&key).map(|&id| (id, end))
            });
            match found {
                Some((id, end)) => {
                    pieces.push(id);
                    start = end;
                }
                None => {
                    out.push(self.unk);
                    return;
                }
            }
        }
        out.extend(pieces);
    }
}

/// BERT's basic tokenizer with `do_lower_case=True`: clean, lowercase, strip accents, split
/// punctuation into single-character words.
fn basic_tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for word in clean_text(text).split(' ').filter(|w| !w.is_empty()) {
        let stripped: String = word
            .nfd()
            .filter(|&c| get_general_category(c) != Gc::NonspacingMark)
            .collect();
        let mut current = String::new();
        for c in stripped.chars() {
            if is_punctuation(c) {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                words.push(c.to_string());
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
    }
    words
}

/// transformers' `_is_punctuation`: all non-alphanumeric ASCII printables and category `P*`.
fn is_punctuation(c: char) -> bool {
    let cp = u32::from(c);
    if (33..=47).contains(&cp)
        || (58..=64).contains(&cp)
        || (91..=96).contains(&cp)
        || (123..=126).contains(&cp)
    {
        return true;
    }
    matches!(
        get_general_category(c),
        Gc::ConnectorPunctuation
            | Gc::DashPunctuation
            | Gc::OpenPunctuation
            | Gc::ClosePunctuation
            | Gc::InitialPunctuation
            | Gc::FinalPunctuation
            | Gc::OtherPunctuation
    )
}

/// transformers' `clean_up_tokenization`: no space before `. ? ! ,` and English contractions.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BertTokenizer {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "bird", ".",
        ];
        BertTokenizer::from_vocab(
            vocab.iter().map(|s| s.to_string()).collect(),
            Path::new("t"),
        )
        .unwrap()
    }

    #[test]
    fn wordpiece_splits_greedily_and_unknown_words_become_unk() {
        let t = tiny();
        assert_eq!(t.encode("Unaffable bird."), vec![2, 4, 5, 6, 7, 8, 3]);
        assert_eq!(t.encode("unaffx"), vec![2, 1, 3]);
        assert_eq!(t.decode(&[4, 5, 6, 7, 8]), "unaffable bird.");
    }

    #[test]
    fn vocab_without_special_tokens_is_an_error() {
        let err = BertTokenizer::from_vocab(vec!["a".into()], Path::new("v.txt")).unwrap_err();
        assert!(err.to_string().contains("[CLS]"), "{err}");
    }
}
