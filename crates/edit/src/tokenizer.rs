//! An exact CLIP BPE tokenizer, as transformers' `CLIPTokenizer` for
//! `openai/clip-vit-large-patch14` (the text encoder of Stable Diffusion 1.5).
//!
//! Pipeline for `encode(text)`:
//! 1. added tokens (`<|startoftext|>`, `<|endoftext|>` and those from
//!    [`ClipTokenizer::add_token`], e.g. textual-inversion placeholders) are cut out of the raw
//!    text first, leftmost-longest and case-sensitively, and map straight to their ids;
//! 2. each remaining segment is cleaned ([`deda_core::text_clean::clean_text`]: ftfy-less path);
//! 3. pre-tokenised with CLIP's pattern (case-insensitive)
//!    `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;
//! 4. each pre-token's UTF-8 bytes become byte-level characters and go through BPE (cached);
//! 5. `BOS ids EOS`, truncated to 77 (75 content tokens) and padded with `<|endoftext|>`.
//!
//! Parity: `tests/clip_tokenizer_parity.rs` checks exact ids against transformers 4.57.3
//! (fixture made by `tools/parity/make_clip_tokenizer_fixture.py`).
use crate::byte_level::byte_encoder;
use crate::error::{Error, Result};
use crate::vocab::{Vocab, END_OF_TEXT, END_OF_WORD, START_OF_TEXT};
use deda_core::text_clean::clean_text;
use regex::Regex;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

/// The sequence length of SD-1.5's text encoder.
pub const MAX_LENGTH: usize = 77;

/// CLIP's pre-tokenisation pattern (used case-insensitively).
pub const PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// A token added after the base vocabulary, matched in the raw text before BPE.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AddedToken {
    content: String,
    id: u32,
    special: bool,
}

/// The CLIP tokenizer; cheap to share across threads (`&self` methods, internal BPE cache).
#[derive(Debug)]
pub struct ClipTokenizer {
    vocab: Vocab,
    byte_encoder: [char; 256],
    byte_decoder: HashMap<char, u8>,
    pattern: Regex,
    added: Vec<AddedToken>,
    next_id: u32,
    bos: u32,
    eos: u32,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

/// One piece of the raw text after cutting out added tokens.
enum Segment<'a> {
    Text(&'a str),
    Added(u32),
}

impl ClipTokenizer {
    /// Loads `bpe_simple_vocab_16e6.txt.gz` (gzip) or its decompressed text.
    ///
    /// # Errors
    /// [`Error::BpeFile`] if the file cannot be read or decompressed; [`Error::BpeFormat`] if
    /// its content is not a CLIP merges file.
    pub fn from_bpe_gz(path: &Path) -> Result<ClipTokenizer> {
        let bytes = std::fs::read(path).map_err(|source| Error::BpeFile {
            path: path.to_path_buf(),
            source,
        })?;
        let text = decompress(&bytes).map_err(|source| Error::BpeFile {
            path: path.to_path_buf(),
            source,
        })?;
        ClipTokenizer::from_bpe_text(&text, &path.display().to_string())
    }

    /// Builds the tokenizer from the BPE file's bytes, gzip-compressed or plain text.
    ///
    /// # Errors
    /// [`Error::BpeFormat`] if the bytes are not a (gzipped) UTF-8 CLIP merges file.
    pub fn from_bpe_bytes(bytes: &[u8]) -> Result<ClipTokenizer> {
        let text = decompress(bytes).map_err(|e| Error::BpeFormat {
            origin: "bytes".into(),
            reason: e.to_string(),
        })?;
        ClipTokenizer::from_bpe_text(&text, "bytes")
    }

    fn from_bpe_text(text: &str, origin: &str) -> Result<ClipTokenizer> {
        let vocab = Vocab::from_bpe_text(text, origin)?;
        let special_id = |name: &str| {
            vocab
                .encoder
                .get(name)
                .copied()
                .ok_or_else(|| Error::BpeFormat {
                    origin: origin.to_string(),
                    reason: format!("the vocabulary has no {name}"),
                })
        };
        let (bos, eos) = (special_id(START_OF_TEXT)?, special_id(END_OF_TEXT)?);
        let pattern = Regex::new(&format!("(?i){PATTERN}")).map_err(|e| Error::BpeFormat {
            origin: origin.to_string(),
            reason: format!("pattern: {e}"),
        })?;
        let byte_encoder = byte_encoder();
        let byte_decoder = (0..=255u8)
            .map(|b| (byte_encoder[usize::from(b)], b))
            .collect();
        let special = |content: &str, id| AddedToken {
            content: content.to_string(),
            id,
            special: true,
        };
        Ok(ClipTokenizer {
            next_id: vocab.size as u32,
            vocab,
            byte_encoder,
            byte_decoder,
            pattern,
            added: vec![special(START_OF_TEXT, bos), special(END_OF_TEXT, eos)],
            bos,
            eos,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Id of `<|startoftext|>` (49406).
    pub fn bos_id(&self) -> u32 {
        self.bos
    }

    /// Id of `<|endoftext|>` (49407), also the end, padding and unknown token of SD-1.5.
    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    /// Id used for padding: `<|endoftext|>` (SD-1.5's `pad_token`).
    pub fn pad_id(&self) -> u32 {
        self.eos
    }

    /// Size of the base vocabulary (49408), without added tokens.
    pub fn base_vocab_size(&self) -> usize {
        self.vocab.size
    }

    /// Size of the vocabulary including added tokens: the rows the embedding table needs.
    pub fn len(&self) -> usize {
        self.next_id as usize
    }

    /// Whether the vocabulary is empty (never, for a loaded tokenizer).
    pub fn is_empty(&self) -> bool {
        self.next_id == 0
    }

    /// The id of a token string (base vocabulary or added), if any.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.added
            .iter()
            .find(|a| a.content == token)
            .map(|a| a.id)
            .or_else(|| self.vocab.encoder.get(token).copied())
    }

    /// Adds a token matched as a whole in the raw text before BPE (like transformers'
    /// `add_tokens`), e.g. a textual-inversion placeholder `<cdp-bird-0>`; returns its id.
    ///
    /// A new token gets the next id after the vocabulary (49408, 49409, ...). A token that is
    /// already in the base vocabulary keeps its id (but is now matched whole); adding an
    /// already added token returns its id.
    ///
    /// # Errors
    /// [`Error::AddToken`] for an empty token or one containing whitespace.
    pub fn add_token(&mut self, token: &str) -> Result<u32> {
        if token.is_empty() || token.chars().any(char::is_whitespace) {
            return Err(Error::AddToken {
                token: token.to_string(),
                reason: "a token must be non-empty and contain no whitespace".into(),
            });
        }
        if let Some(existing) = self.added.iter().find(|a| a.content == token) {
            return Ok(existing.id);
        }
        let id = match self.vocab.encoder.get(token) {
            Some(&id) => id,
            None => {
                self.next_id += 1;
                self.next_id - 1
            }
        };
        self.added.push(AddedToken {
            content: token.to_string(),
            id,
            special: false,
        });
        Ok(id)
    }

    /// The BPE token ids of `text`, without BOS/EOS, truncation or padding.
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for segment in self.split_added(text) {
            match segment {
                Segment::Added(id) => ids.push(id),
                Segment::Text(t) => self.bpe_text(t, &mut ids),
            }
        }
        ids
    }

    /// `BOS ids EOS` with no truncation (transformers' `tokenizer(text).input_ids`).
    pub fn encode_unpadded(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.bos];
        ids.extend(self.token_ids(text));
        ids.push(self.eos);
        ids
    }

    /// The 77 ids SD-1.5 feeds its text encoder: `BOS ids EOS`, content truncated to 75 tokens,
    /// padded with `<|endoftext|>` (`padding="max_length", max_length=77, truncation=True`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_padded(text, MAX_LENGTH)
    }

    /// As [`ClipTokenizer::encode`] with another length.
    ///
    /// # Panics
    /// If `max_length < 2` (no room for BOS and EOS): a programming error.
    pub fn encode_padded(&self, text: &str, max_length: usize) -> Vec<u32> {
        assert!(
            max_length >= 2,
            "max_length must leave room for BOS and EOS"
        );
        let mut content = self.token_ids(text);
        content.truncate(max_length - 2);
        let mut ids = Vec::with_capacity(max_length);
        ids.push(self.bos);
        ids.extend(content);
        ids.push(self.eos);
        ids.resize(max_length, self.pad_id());
        ids
    }

    /// The text of `ids`, as transformers' `decode(ids, skip_special_tokens,
    /// clean_up_tokenization_spaces=False)`: `</w>` becomes a space, runs of base tokens are
    /// trimmed, and added (non-special) tokens are joined to them with single spaces. Ids
    /// outside the vocabulary are skipped; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut run: Vec<&str> = Vec::new();
        for &id in ids {
            if skip_special_tokens && (id == self.bos || id == self.eos) {
                continue;
            }
            if let Some(a) = self.added.iter().find(|a| a.id == id && !a.special) {
                let text = self.run_to_string(&run);
                if !run.is_empty() && !text.is_empty() {
                    parts.push(text);
                }
                run.clear();
                parts.push(a.content.clone());
            } else if let Some(t) = self.vocab.decoder.get(&id) {
                run.push(t);
            }
        }
        if !run.is_empty() {
            parts.push(self.run_to_string(&run));
        }
        parts.join(" ")
    }

    fn run_to_string(&self, tokens: &[&str]) -> String {
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|t| t.chars())
            .filter_map(|c| self.byte_decoder.get(&c).copied())
            .collect();
        String::from_utf8_lossy(&bytes)
            .replace(END_OF_WORD, " ")
            .trim()
            .to_string()
    }

    /// Cuts added tokens out of `text`, leftmost first, longest on ties.
    fn split_added<'a>(&self, text: &'a str) -> Vec<Segment<'a>> {
        let mut segments = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < text.len() {
            let rest = &text[i..];
            let hit = self
                .added
                .iter()
                .filter(|a| rest.starts_with(&a.content))
                .max_by_key(|a| a.content.len());
            match hit {
                Some(a) => {
                    if start < i {
                        segments.push(Segment::Text(&text[start..i]));
                    }
                    segments.push(Segment::Added(a.id));
                    i += a.content.len();
                    start = i;
                }
                None => i += rest.chars().next().map_or(1, char::len_utf8),
            }
        }
        if start < text.len() {
            segments.push(Segment::Text(&text[start..]));
        }
        segments
    }

    /// Cleans, pre-tokenises and BPE-encodes a segment without added tokens.
    fn bpe_text(&self, text: &str, ids: &mut Vec<u32>) {
        let cleaned = clean_text(text);
        for m in self.pattern.find_iter(&cleaned) {
            ids.extend(self.bpe_word(m.as_str()));
        }
    }

    /// BPE ids of one pre-token, through the cache.
    fn bpe_word(&self, word: &str) -> Vec<u32> {
        // The reference caches the special tokens verbatim (no `</w>`).
        if word == START_OF_TEXT || word == END_OF_TEXT {
            return vec![self.vocab.encoder.get(word).copied().unwrap_or(self.eos)];
        }
        if let Some(hit) = self.cache_lock().get(word) {
            return hit.clone();
        }
        let pieces = self.vocab.merges.apply(self.initial_pieces(word));
        self.cache_lock().insert(word.to_string(), pieces.clone());
        pieces
    }

    /// The word's byte characters as ids, `</w>` glued to the last one.
    fn initial_pieces(&self, word: &str) -> Vec<u32> {
        let chars: Vec<char> = word
            .bytes()
            .map(|b| self.byte_encoder[usize::from(b)])
            .collect();
        let n = chars.len();
        chars
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let piece = if k + 1 == n {
                    format!("{c}{END_OF_WORD}")
                } else {
                    c.to_string()
                };
                // Unknown pieces map to <|endoftext|>, the reference's unk_token.
                self.vocab.encoder.get(&piece).copied().unwrap_or(self.eos)
            })
            .collect()
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u32>>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn decompress(bytes: &[u8]) -> std::io::Result<String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut text)?;
        Ok(text)
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}
