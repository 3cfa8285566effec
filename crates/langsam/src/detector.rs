//! The detector half of Lang-SAM: text prompt + image → scored boxes.
use image::RgbImage;

/// Errors of a detector implementation, whatever its crate.
pub type DetectorError = Box<dyn std::error::Error + Send + Sync>;

/// One detected object.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedBox {
    /// Box `(x1, y1, x2, y2)` in the image's pixels (may reach outside the image; it is clamped).
    pub xyxy: [f64; 4],
    /// Detection confidence in `[0, 1]` (GroundingDINO: best token probability).
    pub score: f32,
    /// The phrase the box was matched to (may be empty).
    pub label: String,
}

/// Finds boxes of the objects a text prompt names. Object-safe, so Lang-SAM can hold any
/// detector as `Box<dyn BoxDetector>`.
pub trait BoxDetector {
    /// Short name for reports and provenance (e.g. `"grounding-dino-base"`).
    fn name(&self) -> &str;

    /// Hash of the detector's weights, `None` without weights.
    fn weights_hash(&self) -> Option<String>;

    /// Detects the objects named by `prompt` in `image`. Implementations may already drop
    /// low-confidence boxes; Lang-SAM applies its own box threshold on top.
    ///
    /// # Errors
    /// Implementation-specific; the error should name what failed.
    fn detect(&mut self, image: &RgbImage, prompt: &str)
        -> Result<Vec<DetectedBox>, DetectorError>;
}

impl<D: BoxDetector + ?Sized> BoxDetector for Box<D> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn weights_hash(&self) -> Option<String> {
        (**self).weights_hash()
    }

    fn detect(
        &mut self,
        image: &RgbImage,
        prompt: &str,
    ) -> Result<Vec<DetectedBox>, DetectorError> {
        (**self).detect(image, prompt)
    }
}
