//! `post_process_grounded_object_detection`: keep queries whose best token probability exceeds
//! the box threshold, name each by the tokens whose probability exceeds the text threshold,
//! and turn boxes into pixel xyxy.
use crate::tokenizer::BertTokenizer;

/// One detected object.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Box in pixels of the original image: x0, y0, x1, y1.
    pub box_xyxy: [f32; 4],
    /// Best token probability of the query.
    pub score: f32,
    /// The prompt tokens above the text threshold, decoded.
    pub phrase: String,
}

/// The raw outputs of one image, on the CPU.
#[derive(Debug, Clone)]
pub struct RawDetections<'a> {
    /// Class logits, `queries x max_text_len`, row-major.
    pub logits: &'a [f32],
    /// Boxes cxcywh normalised, `queries x 4`, row-major.
    pub boxes: &'a [f32],
    /// Token ids of the prompt.
    pub input_ids: &'a [i64],
}

/// Thresholds and the size of the original image.
#[derive(Debug, Clone, Copy)]
pub struct PostProcess {
    /// Minimum best-token probability of a kept query (Lang-SAM: 0.3).
    pub box_threshold: f32,
    /// Minimum probability of a token to be part of the phrase (Lang-SAM: 0.25).
    pub text_threshold: f32,
    /// (height, width) of the original image.
    pub target_size: (f32, f32),
}

/// Kept detections in query order.
pub fn post_process(raw: &RawDetections, tok: &BertTokenizer, pp: &PostProcess) -> Vec<Detection> {
    let queries = raw.boxes.len() / 4;
    if queries == 0 {
        return Vec::new();
    }
    let text_len = raw.logits.len() / queries;
    let (th, tw) = pp.target_size;
    let mut out = Vec::new();
    for q in 0..queries {
        let probs: Vec<f32> = raw.logits[q * text_len..(q + 1) * text_len]
            .iter()
            .map(|&z| 1.0 / (1.0 + (-z).exp()))
            .collect();
        let score = probs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if score <= pp.box_threshold {
            continue;
        }
        // the first and the last position never name a phrase (transformers' posmap rule)
        let ids: Vec<i64> = (1..text_len.saturating_sub(1))
            .filter(|&i| probs[i] > pp.text_threshold)
            .filter_map(|i| raw.input_ids.get(i).copied())
            .collect();
        let b = &raw.boxes[q * 4..q * 4 + 4];
        let (cx, cy, w, h) = (b[0], b[1], b[2], b[3]);
        out.push(Detection {
            box_xyxy: [
                (cx - 0.5 * w) * tw,
                (cy - 0.5 * h) * th,
                (cx + 0.5 * w) * tw,
                (cy + 0.5 * h) * th,
            ],
            score,
            phrase: tok.decode(&ids),
        });
    }
    out
}
