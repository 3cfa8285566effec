//! Exact parity of `ClipTokenizer` with transformers 4.57.3's `CLIPTokenizer` (ftfy-less path).
//!
//! Fixture: `tests/fixtures/clip_tokenizer.json`, made by
//! `tools/parity/make_clip_tokenizer_fixture.py` from the same `bpe_simple_vocab_16e6.txt.gz`.
use deda_edit::ClipTokenizer;
use serde_json::Value;
use std::path::PathBuf;

#[path = "../../../testdata/locate.rs"]
mod locate;

fn bpe_path() -> PathBuf {
    locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz")
}

fn tokenizer() -> ClipTokenizer {
    ClipTokenizer::from_bpe_gz(&bpe_path()).unwrap()
}

fn fixture() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_tokenizer.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Checks every case; returns the number checked.
fn check_cases(tok: &ClipTokenizer, cases: &Value) -> usize {
    let cases = cases.as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let prompt = c["prompt"].as_str().unwrap();
        let padded = tok.encode(prompt);
        let unpadded = tok.encode_unpadded(prompt);
        let decoded = tok.decode(&unpadded, true);
        if padded != ids(&c["ids"]) {
            failures.push(format!(
                "{prompt:?}: padded ids {padded:?} != {:?}",
                ids(&c["ids"])
            ));
        }
        if unpadded != ids(&c["unpadded"]) {
            failures.push(format!("{prompt:?}: unpadded ids {unpadded:?}"));
        }
        if decoded != c["decoded"].as_str().unwrap() {
            failures.push(format!(
                "{prompt:?}: decoded {decoded:?} != {:?}",
                c["decoded"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    cases.len()
}

#[test]
fn vocabulary_layout_matches_clip() {
    let tok = tokenizer();
    assert_eq!(tok.base_vocab_size(), 49408);
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.pad_id()),
        (49406, 49407, 49407)
    );
    assert_eq!(tok.token_id("!"), Some(0));
    assert_eq!(tok.token_id("bird</w>"), Some(3329));
}

#[test]
fn every_prompt_gives_the_reference_ids() {
    let tok = tokenizer();
    let f = fixture();
    let n = check_cases(&tok, &f["cases"]);
    assert!(n >= 60, "only {n} cases in the fixture");
}

#[test]
fn added_placeholder_tokens_match_the_reference() {
    let mut tok = tokenizer();
    let f = fixture();
    let added: Vec<u32> = f["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| tok.add_token(t.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(added, ids(&f["added_ids"]));
    assert_eq!(tok.len(), 49410);
    assert_eq!(
        tok.add_token("<cdp-bird-0>").unwrap(),
        49408,
        "re-adding is a no-op"
    );
    check_cases(&tok, &f["added_cases"]);
}

#[test]
fn long_prompts_are_truncated_to_77_with_eos_last() {
    let tok = tokenizer();
    let ids = tok.encode(&"a photo of a bird ".repeat(30));
    assert_eq!(ids.len(), 77);
    assert_eq!(ids[0], 49406);
    assert_eq!(ids[76], 49407);
    assert_ne!(ids[75], 49407, "75 content tokens before EOS");
    let short = tok.encode("");
    assert_eq!(&short[..2], &[49406, 49407]);
    assert!(
        short[2..].iter().all(|&i| i == 49407),
        "padding is <|endoftext|>"
    );
}

#[test]
fn from_bytes_equals_from_path_and_refuses_garbage() {
    let bytes = std::fs::read(bpe_path()).unwrap();
    let a = ClipTokenizer::from_bpe_bytes(&bytes).unwrap();
    let b = tokenizer();
    let prompt = "a photo of a Laysan Albatross, 8k";
    assert_eq!(a.encode(prompt), b.encode(prompt));
    let err = ClipTokenizer::from_bpe_bytes(b"header\nnot-a-merge-line\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = ClipTokenizer::from_bpe_gz(std::path::Path::new("/nonexistent/bpe.gz")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/bpe.gz"), "{err}");
}
