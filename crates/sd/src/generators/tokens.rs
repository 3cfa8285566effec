//! Learned class tokens for the peers' prompts, one or several vectors per class, in the files
//! of [`crate::stages::ttti::store`] (one safetensors file per class, `{"<token>": rows}`),
//! which is also what diffusers' `load_textual_inversion` reads: a `(hidden,)` or
//! `(1, hidden)` tensor is one vector, `(n, hidden)` is `n` vectors that the prompt spells
//! `<token> <token>_1 … <token>_{n−1}` (diffusers' `maybe_convert_prompt`; DA-Fusion's
//! `format_name` with `num_tokens = n`).
//!
//! [`PromptEncoder`] finds the `<…>` placeholders of a prompt, loads each one's file from the
//! embeddings folder once, adds the tokens to the tokenizer and encodes the prompt with the
//! learned rows in place of the embedding table's.
//!
//! A folder without a class's safetensors file may instead hold the references' own
//! `torch.save` token file ([`find_torch_token_file`], read by [`read_torch_tokens`] without
//! Python): Diff-Mix's `learned_embeds-steps-last.bin` (`train_lora.py` `save_progress`:
//! `{learned_embeds_dict: {"<class_i>": (hidden,)}, name2placeholder: {class name:
//! "<class_i>"}, placeholder2name}`; its fine-tuned folder, which also holds the LoRA weights, is
//! the embeddings folder) or diffusers' textual-inversion `learned_embeds.bin` (`{token:
//! embedding}`, what Diff-Mix's `ti_mix.py` loads). A class's token is found by its name
//! (our placeholder of the file's class name, [`placeholder_token`], which ignores case and
//! punctuation) or by the file's own token.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use deda_edit::ClipTokenizer;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::models::clip_text::ClipTextModel;
use crate::stages::ttti::store::placeholder_token;

pub mod torch_save;

/// The `torch.save` token file names looked for in an embeddings folder, in order: Diff-Mix's
/// (`utils/misc.py` `parse_finetuned_ckpt` takes a file whose name contains
/// `learned_embeds-steps-last`), then diffusers' textual inversion's.
pub const TORCH_TOKEN_FILES: [&str; 2] = ["learned_embeds-steps-last.bin", "learned_embeds.bin"];

/// The `torch.save` token file of an embeddings folder ([`TORCH_TOKEN_FILES`]), if any.
pub fn find_torch_token_file(dir: &Path) -> Option<PathBuf> {
    TORCH_TOKEN_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// One learned token of a `torch.save` token file.
#[derive(Debug)]
pub struct TorchToken {
    /// The file's token (`<class_3>` in Diff-Mix's files).
    pub token: String,
    /// The class it stands for, when the file says (Diff-Mix's `placeholder2name` /
    /// `name2placeholder`).
    pub class_name: Option<String>,
    /// The rows `(n, hidden)`, f32.
    pub rows: Tensor,
}

/// Reads a `torch.save` token file: Diff-Mix's `{learned_embeds_dict, name2placeholder,
/// placeholder2name}` or a flat `{token: embedding}`; each embedding `(hidden,)` or
/// `(n, hidden)`, any float dtype (returned in f32), in the file's order.
///
/// # Errors
/// [`Error::Weights`] naming the file: unreadable, not a `torch.save` zip file, or not one of
/// these layouts.
pub fn read_torch_tokens(path: &Path) -> Result<Vec<TorchToken>> {
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let top = torch_save::read(path)?;
    let (embeds, names) = match top.get("learned_embeds_dict") {
        Some(d) => (d, top.get("placeholder2name")),
        None => (&top, None),
    };
    let torch_save::Value::Dict(items) = embeds else {
        return Err(fail("expected a dict of learned embeddings".into()));
    };
    let name_of = |token: &str| -> Option<String> {
        if let Some(n) = names.and_then(|d| d.get(token)).and_then(|v| v.as_str()) {
            return Some(n.to_string());
        }
        let torch_save::Value::Dict(pairs) = top.get("name2placeholder")? else {
            return None;
        };
        pairs
            .iter()
            .find(|(_, v)| v.as_str() == Some(token))
            .and_then(|(k, _)| k.as_str().map(str::to_string))
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let (Some(token), torch_save::Value::Tensor(t)) = (k.as_str(), v) else {
            return Err(fail(
                "expected {token: embedding} entries (strings to tensors)".into(),
            ));
        };
        out.push(TorchToken {
            token: token.to_string(),
            class_name: name_of(token),
            rows: embedding_rows(token, t).map_err(fail)?,
        });
    }
    if out.is_empty() {
        return Err(fail("no learned embeddings".into()));
    }
    Ok(out)
}

/// The file of placeholder `token` (`<name>` → `name.safetensors`) in `dir`.
pub fn token_file(dir: &Path, token: &str) -> PathBuf {
    dir.join(format!("{}.safetensors", token.trim_matches(['<', '>'])))
}

/// The prompt words of a token with `n` vectors: `<t> <t>_1 … <t>_{n−1}`.
pub fn token_words(token: &str, n: usize) -> String {
    (0..n.max(1))
        .map(|k| {
            if k == 0 {
                token.to_string()
            } else {
                format!("{token}_{k}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a token file: exactly one tensor `(hidden,)`, `(1, hidden)` or `(n, hidden)`;
/// returns its token and the rows `(n, hidden)` in f32.
///
/// # Errors
/// [`Error::Weights`] naming the file if it is missing, unreadable or not one embedding.
pub fn load_tokens(path: &Path) -> Result<(String, Tensor)> {
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(fail("learned token file not found".into()));
    }
    let tensors = Tensor::read_safetensors(path).map_err(|e| fail(e.to_string()))?;
    let [(token, t)] = tensors.as_slice() else {
        return Err(fail(format!(
            "expected one tensor {{token: embedding}}, found {}",
            tensors.len()
        )));
    };
    Ok((token.clone(), embedding_rows(token, t).map_err(fail)?))
}

/// A stored embedding `(hidden,)` or `(n, hidden)` as f32 rows `(n, hidden)`.
fn embedding_rows(token: &str, t: &Tensor) -> std::result::Result<Tensor, String> {
    if !t.is_floating_point() {
        return Err(format!("embedding {token:?} is not floating point"));
    }
    let rows = match t.size().as_slice() {
        [h] => t.reshape([1, *h]),
        [n, _] if *n >= 1 => t.shallow_clone(),
        s => {
            return Err(format!(
                "embedding {token:?} must be (hidden,) or (n, hidden), got {s:?}"
            ))
        }
    };
    Ok(rows.to_kind(Kind::Float))
}

/// Writes `{token: rows (n, hidden)}` to `path` atomically (temporary file, then rename).
///
/// # Errors
/// [`Error::Weights`] naming the file if it cannot be written.
pub fn save_tokens(path: &Path, token: &str, rows: &Tensor) -> Result<()> {
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let rows = rows
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    if rows.dim() != 2 {
        return Err(fail(format!(
            "rows must be (n, hidden), got {:?}",
            rows.size()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(format!("cannot create folder: {e}")))?;
    }
    let tmp = path.with_extension(format!("safetensors.tmp{}", std::process::id()));
    Tensor::write_safetensors(&[(token, &rows)], &tmp).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(format!("cannot rename the temporary file: {e}")))
}

/// `last_hidden_state` of `ids` (N, L) with `learned` (id → row (hidden,)) in place of the
/// embedding table's rows for those ids.
///
/// # Errors
/// [`Error::Input`] for ids outside the vocabulary that are not learned, or rows of the wrong
/// width.
pub fn encode_with_rows(
    text: &ClipTextModel,
    ids: &Tensor,
    learned: &HashMap<i64, Tensor>,
) -> Result<Tensor> {
    if learned.is_empty() {
        return text.forward(ids);
    }
    let hidden = text.config().hidden_size;
    let device = text.token_embedding().device();
    let ids = ids.to_device(device).to_kind(Kind::Int64);
    let mut any = ids.zeros_like().to_kind(Kind::Bool);
    for &id in learned.keys() {
        any = any.logical_or(&ids.eq(id));
    }
    let mut embeds = text.embed_tokens(&ids.masked_fill(&any, 0))?;
    let mut sorted: Vec<_> = learned.iter().collect();
    sorted.sort_by_key(|(id, _)| **id);
    for (&id, row) in sorted {
        if row.size() != [hidden] {
            return Err(Error::Input(format!(
                "learned row of id {id} must be ({hidden},), got {:?}",
                row.size()
            )));
        }
        let mask = ids.eq(id).unsqueeze(-1);
        let row = row
            .to_device(device)
            .to_kind(embeds.kind())
            .view([1, 1, hidden]);
        embeds = embeds.where_self(&mask.logical_not(), &row);
    }
    Ok(text.forward_embeds(&embeds)?.last())
}

/// Prompts → text embeddings, with the learned tokens of an embeddings folder.
#[derive(Debug)]
pub struct PromptEncoder {
    tokenizer: ClipTokenizer,
    embeddings: Option<PathBuf>,
    /// Loaded placeholders: token → number of vectors.
    loaded: HashMap<String, usize>,
    learned: HashMap<i64, Tensor>,
    cache: HashMap<String, Tensor>,
    /// The folder's `torch.save` token file and its tokens, read on first need.
    torch_tokens: Option<(PathBuf, Vec<TorchToken>)>,
}

impl PromptEncoder {
    /// An encoder; with `embeddings`, the `<…>` words of prompts are learned tokens read from
    /// that folder.
    pub fn new(tokenizer: ClipTokenizer, embeddings: Option<PathBuf>) -> Self {
        PromptEncoder {
            tokenizer,
            embeddings,
            loaded: HashMap::new(),
            learned: HashMap::new(),
            cache: HashMap::new(),
            torch_tokens: None,
        }
    }

    /// The embeddings folder.
    pub fn embeddings(&self) -> Option<&Path> {
        self.embeddings.as_deref()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// Loads the placeholder `token` (once) and returns its number of vectors.
    fn load(&mut self, token: &str, vocab: i64) -> Result<usize> {
        if let Some(&n) = self.loaded.get(token) {
            return Ok(n);
        }
        let Some(dir) = &self.embeddings else {
            return Ok(0);
        };
        let path = token_file(dir, token);
        let rows = match find_torch_token_file(dir).filter(|_| !path.is_file()) {
            Some(file) => self.torch_rows(&file, token)?,
            None => {
                let (stored, rows) = load_tokens(&path)?;
                if stored != token {
                    return Err(Error::Weights {
                        path,
                        message: format!("holds token {stored:?}, expected {token:?}"),
                    });
                }
                rows
            }
        };
        let n = rows.size()[0] as usize;
        for k in 0..n {
            let word = if k == 0 {
                token.to_string()
            } else {
                format!("{token}_{k}")
            };
            let id = self
                .tokenizer
                .add_token(&word)
                .map_err(|e| Error::Input(e.to_string()))?;
            if i64::from(id) < vocab {
                return Err(Error::Input(format!(
                    "placeholder {word:?} is already a word of the vocabulary (id {id})"
                )));
            }
            self.learned.insert(i64::from(id), rows.get(k as i64));
        }
        self.loaded.insert(token.to_string(), n);
        Ok(n)
    }

    /// The rows of placeholder `token` in the `torch.save` token file `file` (read once): the
    /// token whose class name's placeholder is `token`, else the file's token `token`.
    fn torch_rows(&mut self, file: &Path, token: &str) -> Result<Tensor> {
        if self.torch_tokens.as_ref().is_none_or(|(f, _)| f != file) {
            self.torch_tokens = Some((file.to_path_buf(), read_torch_tokens(file)?));
        }
        let tokens = self
            .torch_tokens
            .as_ref()
            .map_or(&[][..], |(_, t)| t.as_slice());
        let by_name = tokens.iter().find(|t| {
            t.class_name
                .as_deref()
                .is_some_and(|n| placeholder_token(n) == token)
        });
        let found = by_name.or_else(|| tokens.iter().find(|t| t.token == token));
        match found {
            Some(t) => Ok(t.rows.shallow_clone()),
            None => {
                let held: Vec<String> = tokens
                    .iter()
                    .map(|t| match &t.class_name {
                        Some(n) => format!("{} ({n:?})", t.token),
                        None => t.token.clone(),
                    })
                    .collect();
                Err(Error::Weights {
                    path: file.to_path_buf(),
                    message: format!(
                        "no learned token for {token} (by class name or token); holds {}",
                        held.join(", ")
                    ),
                })
            }
        }
    }

    /// The prompt with each multi-vector placeholder spelled out (`<t>` → `<t> <t>_1 …`),
    /// loading the placeholders it names.
    ///
    /// # Errors
    /// [`Error::Weights`] naming a missing or bad token file.
    pub fn expand(&mut self, prompt: &str, vocab: i64) -> Result<String> {
        let mut words = Vec::new();
        for w in prompt.split_whitespace() {
            let is_placeholder =
                w.len() > 2 && w.starts_with('<') && w.ends_with('>') && !w.contains('|');
            if is_placeholder && self.embeddings.is_some() {
                let n = self.load(w, vocab)?;
                words.push(token_words(w, n));
            } else {
                words.push(w.to_string());
            }
        }
        Ok(words.join(" "))
    }

    /// Text embeddings (1, 77, D) of `prompt` (cached).
    ///
    /// # Errors
    /// As [`PromptEncoder::expand`] and the text encoder.
    pub fn encode(&mut self, text: &ClipTextModel, prompt: &str) -> Result<Tensor> {
        if let Some(c) = self.cache.get(prompt) {
            return Ok(c.shallow_clone());
        }
        let vocab = text.config().vocab_size;
        let expanded = self.expand(prompt, vocab)?;
        let ids: Vec<i64> = self
            .tokenizer
            .encode(&expanded)
            .into_iter()
            .map(i64::from)
            .collect();
        let ids = Tensor::from_slice(&ids).view([1, -1]);
        let out = tch::no_grad(|| encode_with_rows(text, &ids, &self.learned))?;
        self.cache.insert(prompt.to_string(), out.shallow_clone());
        Ok(out)
    }
}
