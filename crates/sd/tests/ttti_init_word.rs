//! TTTI's `{label}` initializer (the paper's Pascal setting: each token starts from its label
//! name) with the real CLIP BPE vocabulary: a one-token class name is used as is, a compound
//! name falls back to its longest one-token suffix, and a fixed word is kept for every class.
use deda_edit::ClipTokenizer;
use deda_sd::stages::ttti::stage::{init_word_for, LABEL_INIT_WORD};

#[path = "../../../testdata/locate.rs"]
mod locate;

fn tokenizer() -> ClipTokenizer {
    let p = locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz");
    ClipTokenizer::from_bpe_gz(&p).unwrap_or_else(|e| panic!("CLIP BPE file {}: {e}", p.display()))
}

#[test]
fn label_initializers_are_one_clip_token_per_voc_class() {
    let t = tokenizer();
    for (class, want) in [
        ("dog", "dog"),
        ("person", "person"),
        ("Aeroplane", "plane"),
        ("pottedplant", "plant"),
    ] {
        assert_eq!(init_word_for(LABEL_INIT_WORD, class, &t), want, "{class}");
    }
    for class in deda_data::VOC_CLASSES {
        let w = init_word_for(LABEL_INIT_WORD, class, &t);
        assert_eq!(
            t.token_ids(&w).len(),
            1,
            "{class} -> {w:?} is not one token"
        );
        assert!(
            class.ends_with(&w),
            "{class} -> {w:?} is not a suffix of the name"
        );
    }
    assert_eq!(
        init_word_for("bird", "001.Black_footed_Albatross", &t),
        "bird"
    );
}
