//! GPT-2 / CLIP byte-level alphabet: every byte gets a printable Unicode character.
//!
//! Same table as `bytes_to_unicode()` in openai/CLIP and transformers: printable Latin-1 bytes
//! (`!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`) map to themselves; the other 68 bytes map, in increasing
//! byte order, to U+0100, U+0101, ... so that BPE never sees spaces or control characters.

/// The bytes in the order the vocabulary lists their characters: the printable ones first,
/// then the remaining ones in increasing order (the key order of Python's `bytes_to_unicode()`).
pub fn vocab_byte_order() -> Vec<u8> {
    let mut order: Vec<u8> = (0..=255u8).filter(|&b| is_printable(b)).collect();
    order.extend((0..=255u8).filter(|&b| !is_printable(b)));
    order
}

/// The character of each byte.
pub fn byte_encoder() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        table[usize::from(b)] = if is_printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\0');
            next += 1;
            c
        };
    }
    table
}

fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_reference_layout() {
        let enc = byte_encoder();
        assert_eq!(enc[usize::from(b'a')], 'a');
        assert_eq!(enc[usize::from(b' ')], '\u{120}'); // 'Ġ'
        assert_eq!(enc[0], '\u{100}');
        assert_eq!(enc[0xAD], '\u{143}');
        let mut chars: Vec<char> = enc.to_vec();
        chars.sort_unstable();
        chars.dedup();
        assert_eq!(chars.len(), 256, "the mapping must be injective");
        let order = vocab_byte_order();
        assert_eq!(order.len(), 256);
        assert_eq!((order[0], order[93], order[94]), (b'!', b'~', 0xA1));
        assert_eq!(
            order[188], 0,
            "first non-printable byte after the 188 printable ones"
        );
    }
}
