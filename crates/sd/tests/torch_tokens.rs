//! The references' `torch.save` token files read without Python (`generators::tokens::
//! read_torch_tokens`, `tokens::torch_save`): Diff-Mix's `learned_embeds-steps-last.bin` (rows
//! of one shared storage at offsets), diffusers' flat `learned_embeds.bin` in float16, the
//! legacy format refused, damaged files refused; and a prompt with a Diff-Mix class token encodes
//! as with our own token file. Fixtures made by tools/parity/make_torch_tokens_fixture.py.
use std::collections::HashMap;
use std::path::PathBuf;

use deda_sd::generators::tokens::{
    find_torch_token_file, read_torch_tokens, save_tokens, torch_save, PromptEncoder,
};
use deda_sd::generators::{load_tokenizer, tiny_random_sd};
use deda_sd::weights::LoadOptions;
use tch::Tensor;

#[path = "../../../testdata/locate.rs"]
mod locate;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_tokens")
}

fn expected() -> HashMap<String, Tensor> {
    let p = fixtures().join("expected.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

#[test]
fn diffmix_tokens_are_read_with_their_class_names() {
    let want = expected();
    let dir = fixtures().join("diffmix");
    let file = find_torch_token_file(&dir).unwrap();
    assert!(file.ends_with("learned_embeds-steps-last.bin"));
    let tokens = read_torch_tokens(&file).unwrap();
    let got: Vec<(&str, Option<&str>)> = tokens
        .iter()
        .map(|t| (t.token.as_str(), t.class_name.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("<class_0>", Some("Black_footed Albatross")),
            ("<class_1>", Some("Laysan/Albatross")),
            ("<class_2>", Some("Sooty albatross")),
        ]
    );
    for t in &tokens {
        let w = &want[&format!("diffmix.{}", t.token)];
        assert!(
            same(&t.rows, &w.unsqueeze(0)),
            "{}: {:?} vs {:?}",
            t.token,
            t.rows,
            w
        );
    }
    // Rows of one storage at offsets 0, 16, 32: each its own values.
    assert!(!same(&tokens[0].rows, &tokens[1].rows));
}

#[test]
fn flat_half_precision_tokens_are_widened() {
    let file = find_torch_token_file(&fixtures().join("flat_fp16")).unwrap();
    let tokens = read_torch_tokens(&file).unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].token, "<sooty-albatross>");
    assert_eq!(tokens[0].class_name, None);
    assert_eq!(tokens[0].rows.kind(), tch::Kind::Float);
    assert!(same(&tokens[0].rows, &expected()["flat.<sooty-albatross>"]));
}

#[test]
fn legacy_and_damaged_files_are_refused_naming_the_file() {
    let legacy = fixtures().join("legacy/learned_embeds.bin");
    let e = read_torch_tokens(&legacy).unwrap_err().to_string();
    assert!(e.contains("torch < 1.6") && e.contains("legacy"), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixtures().join("diffmix/learned_embeds-steps-last.bin")).unwrap();
    for (name, bytes) in [
        ("truncated.bin", good[..good.len() / 2].to_vec()),
        ("empty.bin", Vec::new()),
        ("zeros.bin", {
            // the zip's pickle and storage bytes blanked: a valid archive whose contents are not
            let mut b = good.clone();
            for x in b.iter_mut().skip(120).take(400) {
                *x = 0;
            }
            b
        }),
    ] {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = read_torch_tokens(&p).unwrap_err().to_string();
        assert!(e.contains(name), "{name}: {e}");
    }
    // A file that is a safetensors file, not a torch.save one.
    let e = torch_save::read(&fixtures().join("expected.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a zip"), "{e}");
}

#[test]
fn a_diffmix_folder_serves_prompts_like_our_token_files() {
    let bpe = locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz");
    let sd = tiny_random_sd(5, LoadOptions::default()).unwrap();
    let text = &sd.text_encoder.model;
    let want = expected();
    let ours = tempfile::tempdir().unwrap();
    for (token, key) in [
        ("<black-footed-albatross>", "diffmix.<class_0>"),
        ("<laysan-albatross>", "diffmix.<class_1>"),
    ] {
        let file = ours
            .path()
            .join(format!("{}.safetensors", token.trim_matches(['<', '>'])));
        save_tokens(&file, token, &want[key].unsqueeze(0)).unwrap();
    }
    let prompt = "a photo of a <black-footed-albatross> beside a <laysan-albatross>";
    let mut diffmix = PromptEncoder::new(
        load_tokenizer(&bpe).unwrap(),
        Some(fixtures().join("diffmix")),
    );
    let mut own = PromptEncoder::new(load_tokenizer(&bpe).unwrap(), Some(ours.path().into()));
    let a = diffmix.encode(text, prompt).unwrap();
    let b = own.encode(text, prompt).unwrap();
    assert!(same(&a, &b), "Diff-Mix's file and ours encode alike");
    // The file's own token names work too, and another class's token changes the encoding.
    let c = diffmix
        .encode(text, "a photo of a <class_2> beside a <laysan-albatross>")
        .unwrap();
    assert!(!same(&a, &c));
    // A class the file does not hold is named in the error with what it holds.
    let e = diffmix
        .encode(text, "a photo of a <crow>")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("<crow>") && e.contains("<class_1> (\"Laysan/Albatross\")"),
        "{e}"
    );
    // diffusers' flat file with a two-vector token: the prompt spells both vectors.
    let mut flat = PromptEncoder::new(
        load_tokenizer(&bpe).unwrap(),
        Some(fixtures().join("flat_fp16")),
    );
    let expanded = flat
        .expand("a <sooty-albatross> bird", text.config().vocab_size)
        .unwrap();
    assert_eq!(expanded, "a <sooty-albatross> <sooty-albatross>_1 bird");
}
