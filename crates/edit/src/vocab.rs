//! The CLIP vocabulary and merge ranks, built from OpenAI's `bpe_simple_vocab_16e6.txt.gz`.
//!
//! As openai/CLIP's `SimpleTokenizer.__init__` (and the `vocab.json` / `merges.txt` published
//! with `openai/clip-vit-large-patch14`): the file's first line is a header; the next
//! [`NUM_MERGES`] lines are the merges `"left right"`. The vocabulary lists the 256 byte
//! characters, the same with `</w>`, the concatenation of every merge, then `<|startoftext|>`
//! and `<|endoftext|>` (49408 entries).
use crate::bpe::MergeRanks;
use crate::byte_level::{byte_encoder, vocab_byte_order};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Number of merges CLIP uses: `49152 - 256 - 2`.
pub const NUM_MERGES: usize = 49152 - 256 - 2;
/// The beginning-of-text token.
pub const START_OF_TEXT: &str = "<|startoftext|>";
/// The end-of-text token (also padding and unknown token for SD-1.5).
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// The end-of-word suffix glued to the last piece of every word.
pub const END_OF_WORD: &str = "</w>";

/// Token strings ↔ ids, plus the merge ranks.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// Token string → id.
    pub encoder: HashMap<String, u32>,
    /// Id → token string.
    pub decoder: HashMap<u32, String>,
    /// Merge ranks over ids.
    pub merges: MergeRanks,
    /// Number of entries in the base vocabulary list (49408 for CLIP).
    pub size: usize,
}

impl Vocab {
    /// Builds the vocabulary from the text of the BPE file; `origin` names it in errors.
    ///
    /// # Errors
    /// [`Error::BpeFormat`] if a merge line does not have exactly two parts.
    pub fn from_bpe_text(text: &str, origin: &str) -> Result<Vocab> {
        let merges = parse_merges(text, origin)?;
        let list = vocab_list(&merges);
        let mut encoder = HashMap::with_capacity(list.len());
        for (id, token) in list.iter().enumerate() {
            encoder.insert(token.clone(), id as u32);
        }
        let decoder = encoder.iter().map(|(t, &i)| (i, t.clone())).collect();
        let ranks = merge_ranks(&merges, &encoder);
        Ok(Vocab {
            encoder,
            decoder,
            merges: ranks,
            size: list.len(),
        })
    }
}

fn parse_merges<'a>(text: &'a str, origin: &str) -> Result<Vec<(&'a str, &'a str)>> {
    text.split('\n')
        .enumerate()
        .skip(1)
        .take(NUM_MERGES)
        .map(|(i, line)| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [a, b] => Ok((*a, *b)),
                _ => Err(Error::BpeFormat {
                    origin: origin.to_string(),
                    reason: format!("line {} is not a merge \"left right\": {line:?}", i + 1),
                }),
            }
        })
        .collect()
}

fn vocab_list(merges: &[(&str, &str)]) -> Vec<String> {
    let enc = byte_encoder();
    let chars: Vec<String> = vocab_byte_order()
        .into_iter()
        .map(|b| enc[usize::from(b)].to_string())
        .collect();
    let mut list = chars.clone();
    list.extend(chars.iter().map(|c| format!("{c}{END_OF_WORD}")));
    list.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    list.push(START_OF_TEXT.to_string());
    list.push(END_OF_TEXT.to_string());
    list
}

/// Ranks by id; a merge whose sides are not vocabulary tokens can never apply and is left out.
fn merge_ranks(merges: &[(&str, &str)], encoder: &HashMap<String, u32>) -> MergeRanks {
    let mut ranks = MergeRanks::default();
    for (rank, (a, b)) in merges.iter().enumerate() {
        let ids = (
            encoder.get(*a),
            encoder.get(*b),
            encoder.get(&format!("{a}{b}")),
        );
        if let (Some(&l), Some(&r), Some(&m)) = ids {
            ranks.insert(l, r, rank as u32, m);
        }
    }
    ranks
}
