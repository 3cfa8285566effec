//! The WordPiece tokenizer against transformers' BertTokenizer on the fixture prompts
//! (tools/parity/make_grounding_dino_fixture.py, tiny vocab with bert-base-uncased's special ids).
use std::path::PathBuf;

use deda_grounding_dino::BertTokenizer;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn encode_and_decode_match_transformers() {
    let tok = BertTokenizer::from_file(&fixtures().join("tiny/vocab.txt")).unwrap();
    let p = fixtures().join("tokenizer.json");
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("missing {} (run the fixture script): {e}", p.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let encode = json["encode"].as_object().unwrap();
    assert!(encode.len() >= 15);
    for (prompt, ids) in encode {
        let want: Vec<i64> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(tok.encode(prompt), want, "prompt {prompt:?}");
    }
    for case in json["decode"].as_array().unwrap() {
        let ids: Vec<i64> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(
            tok.decode(&ids),
            case["text"].as_str().unwrap(),
            "ids {ids:?}"
        );
    }
}
