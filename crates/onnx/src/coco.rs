//! The 80 COCO class names in NanoDet's output order, and mapping prompt words to them.

/// COCO-80 class names, indexed by NanoDet's class channel.
pub const COCO_NAMES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorbike",
    "aeroplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "sofa",
    "pottedplant",
    "bed",
    "diningtable",
    "toilet",
    "tvmonitor",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Words that name a COCO class without being its exact name (singular, lower case).
const SYNONYMS: &[(&str, &str)] = &[
    ("bike", "bicycle"),
    ("motorcycle", "motorbike"),
    ("plane", "aeroplane"),
    ("airplane", "aeroplane"),
    ("aircraft", "aeroplane"),
    ("people", "person"),
    ("man", "person"),
    ("woman", "person"),
    ("child", "person"),
    ("human", "person"),
    ("puppy", "dog"),
    ("kitten", "cat"),
    ("pony", "horse"),
    ("lamb", "sheep"),
    ("calf", "cow"),
    ("cattle", "cow"),
    ("couch", "sofa"),
    ("television", "tvmonitor"),
    ("tv", "tvmonitor"),
    ("monitor", "tvmonitor"),
    ("table", "diningtable"),
    ("plant", "pottedplant"),
    ("phone", "cell phone"),
    ("mug", "cup"),
    ("coffee", "cup"),
    ("doughnut", "donut"),
    ("ball", "sports ball"),
];

/// Lower-cases `word`, trims it and turns `_`/`-` into spaces.
fn normalise(word: &str) -> String {
    word.trim().to_lowercase().replace(['_', '-'], " ")
}

/// COCO names too ambiguous to gate on ("mouse" in COCO is the computer mouse).
const AMBIGUOUS: &[&str] = &["mouse"];

/// The COCO class whose name (or a known synonym) equals `name`.
fn lookup(name: &str) -> Option<usize> {
    if AMBIGUOUS.contains(&name) {
        return None;
    }
    let target = SYNONYMS
        .iter()
        .find(|(w, _)| *w == name)
        .map_or(name, |(_, c)| *c);
    COCO_NAMES.iter().position(|n| *n == target)
}

/// Maps a prompt word (e.g. "bird", "Birds", "a photo of a dog") to a COCO class index.
///
/// The whole prompt is tried first, then each word from last to first (the head noun of
/// English phrases usually comes last), each also with a plural suffix removed. Unknown words
/// give `None`, meaning "no detector gating".
pub fn coco_class_for_prompt(prompt: &str) -> Option<usize> {
    let prompt = normalise(prompt);
    let singulars = |w: &str| -> Vec<String> {
        let mut v = vec![w.to_string()];
        for suffix in ["es", "s"] {
            if let Some(stem) = w.strip_suffix(suffix) {
                v.push(stem.to_string());
            }
        }
        v
    };
    let whole = singulars(&prompt);
    let words = prompt.split_whitespace().rev().flat_map(singulars);
    whole.into_iter().chain(words).find_map(|w| lookup(&w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_plural_and_synonym_words_map_to_classes() {
        let idx = |n: &str| COCO_NAMES.iter().position(|c| *c == n).unwrap();
        assert_eq!(coco_class_for_prompt("bird"), Some(idx("bird")));
        assert_eq!(coco_class_for_prompt("Birds"), Some(idx("bird")));
        assert_eq!(coco_class_for_prompt("a photo of a dog"), Some(idx("dog")));
        assert_eq!(coco_class_for_prompt("motorcycle"), Some(idx("motorbike")));
        assert_eq!(coco_class_for_prompt("cell phone"), Some(idx("cell phone")));
        assert_eq!(coco_class_for_prompt("buses"), Some(idx("bus")));
    }

    #[test]
    fn unknown_words_mean_no_gating() {
        assert_eq!(coco_class_for_prompt("flower"), None);
        assert_eq!(coco_class_for_prompt("insect"), None);
        assert_eq!(coco_class_for_prompt(""), None);
        assert_eq!(coco_class_for_prompt("mouse"), None);
    }
}
