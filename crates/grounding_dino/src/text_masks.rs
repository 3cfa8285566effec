//! `generate_masks_with_special_tokens_and_transfer_map`: GroundingDINO lets each phrase (the
//! tokens between two special tokens `[CLS] [SEP] . ?`) attend only to itself, and restarts
//! BERT's position ids at every phrase.

/// bert-base-uncased ids of `[CLS]`, `[SEP]`, `.` and `?`, hard-coded by GroundingDINO.
pub const SPECIAL_TOKENS: [i64; 4] = [101, 102, 1012, 1029];

/// Per row: the (L, L) "may attend" mask (row-major) and the position ids.
pub fn phrase_masks(input_ids: &[Vec<i64>]) -> (Vec<Vec<bool>>, Vec<Vec<i64>>) {
    let mut masks = Vec::with_capacity(input_ids.len());
    let mut positions = Vec::with_capacity(input_ids.len());
    // As in transformers, the previous special column carries over from one row to the next
    // (harmless: every row starts with [CLS] at column 0).
    let mut previous = 0usize;
    for ids in input_ids {
        let n = ids.len();
        let mut mask = vec![false; n * n];
        for i in 0..n {
            mask[i * n + i] = true;
        }
        let mut pos = vec![0i64; n];
        for (col, id) in ids.iter().enumerate() {
            if !SPECIAL_TOKENS.contains(id) {
                continue;
            }
            if col != 0 && col != n - 1 {
                for r in previous + 1..=col {
                    for c in previous + 1..=col {
                        mask[r * n + c] = true;
                    }
                    pos[r] = (r - previous - 1) as i64;
                }
            }
            previous = col;
        }
        masks.push(mask);
        positions.push(pos);
    }
    (masks, positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_blocks_and_positions_restart() {
        // [CLS] a bird . dog . [SEP] [PAD]
        let ids = vec![vec![101, 7, 8, 1012, 9, 1012, 102, 0]];
        let (m, p) = phrase_masks(&ids);
        assert_eq!(p[0], vec![0, 0, 1, 2, 0, 1, 0, 0]);
        let n = 8;
        let allowed = |r: usize, c: usize| m[0][r * n + c];
        assert!(
            allowed(1, 3) && allowed(3, 1) && !allowed(1, 4) && allowed(6, 6) && !allowed(6, 5)
        );
        assert!(allowed(0, 0) && !allowed(0, 1) && allowed(7, 7) && !allowed(7, 6));
    }
}
