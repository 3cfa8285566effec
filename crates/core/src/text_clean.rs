//! CLIP's text cleaning when `ftfy` is absent, as transformers' `CLIPTokenizer` does it.
//!
//! Without ftfy, transformers (4.x, the pure-Python `CLIPTokenizer`) runs BERT's
//! `BasicTokenizer(strip_accents=False, do_split_on_punc=False)`:
//! 1. drop U+0000, U+FFFD and every character of general category `C*` except `\t \n \r`;
//!    turn `\t \n \r` and category `Zs` into a space;
//! 2. put spaces around CJK unified ideographs;
//! 3. Unicode NFC;
//! 4. split on whitespace and lowercase each word (full Unicode lowercase, final sigma included).
//!
//! The words are then joined by single spaces. BERT's own basic tokenizer (GroundingDINO's text
//! side) starts with the same cleaning, so both tokenizers (`deda-edit`'s CLIP, `deda-grounding-dino`'s
//! WordPiece) use [`clean_text`] from here.
use unicode_general_category::{get_general_category, GeneralCategory as Gc};
use unicode_normalization::UnicodeNormalization;

/// The cleaned, lowercased words of `text`, joined by single spaces.
pub fn clean_text(text: &str) -> String {
    let cleaned = drop_controls(text);
    let spaced = space_cjk(&cleaned);
    let normalized: String = spaced.nfc().collect();
    let words: Vec<String> = normalized
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    words.join(" ")
}

fn drop_controls(text: &str) -> String {
    text.chars()
        .filter(|&c| c != '\0' && c != '\u{FFFD}' && !is_control(c))
        .map(|c| if is_whitespace(c) { ' ' } else { c })
        .collect()
}

/// transformers' `_is_whitespace`: space, tab, newline, carriage return or category `Zs`.
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r') || get_general_category(c) == Gc::SpaceSeparator
}

/// transformers' `_is_control`: category `C*`, except tab, newline and carriage return.
fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        get_general_category(c),
        Gc::Control | Gc::Format | Gc::Surrogate | Gc::PrivateUse | Gc::Unassigned
    )
}

fn space_cjk(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// BERT's "Chinese character" ranges (CJK unified ideographs and compatibility blocks).
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_the_basic_tokenizer() {
        assert_eq!(
            clean_text("  A  Photo\tOF\n a\r\nBird "),
            "a photo of a bird"
        );
        assert_eq!(clean_text("zero\u{200B}width"), "zerowidth");
        assert_eq!(clean_text("a\u{00A0}b"), "a b");
        assert_eq!(clean_text("中文"), "中 文");
        assert_eq!(clean_text("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(clean_text("ΟΔΟΣ"), "οδος");
        assert_eq!(clean_text(""), "");
    }
}
