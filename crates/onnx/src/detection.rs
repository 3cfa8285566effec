//! Detections and the geometry NanoDet's decoding and NMS need.
use deda_core::BBox;
use serde::{Deserialize, Serialize};

/// A box by its corners, in (sub)pixel coordinates; may extend past the image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Xyxy {
    /// Left.
    pub x1: f32,
    /// Top.
    pub y1: f32,
    /// Right.
    pub x2: f32,
    /// Bottom.
    pub y2: f32,
}

impl Xyxy {
    /// Area (0 for empty or inverted boxes).
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union with `other` (0 when both are empty).
    pub fn iou(&self, other: &Xyxy) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// This box scaled by `(sx, sy)`.
    pub fn scaled(&self, sx: f32, sy: f32) -> Xyxy {
        Xyxy {
            x1: self.x1 * sx,
            y1: self.y1 * sy,
            x2: self.x2 * sx,
            y2: self.y2 * sy,
        }
    }

    /// This box grown by `margin` times its width/height on every side, as whole pixels
    /// clipped to a `width × height` image; `None` if nothing of it is inside.
    pub fn to_pixel_box(&self, margin: f32, width: u32, height: u32) -> Option<BBox> {
        let (mw, mh) = ((self.x2 - self.x1) * margin, (self.y2 - self.y1) * margin);
        let x0 = (self.x1 - mw).floor().clamp(0.0, width as f32) as u32;
        let y0 = (self.y1 - mh).floor().clamp(0.0, height as f32) as u32;
        let x1 = (self.x2 + mw).ceil().clamp(0.0, width as f32) as u32;
        let y1 = (self.y2 + mh).ceil().clamp(0.0, height as f32) as u32;
        (x1 > x0 && y1 > y0).then_some(BBox {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        })
    }
}

/// One object found by the detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// COCO class index (NanoDet's class channel).
    pub class: usize,
    /// COCO class name.
    pub name: String,
    /// Class score in `[0, 1]`.
    pub score: f32,
    /// Box in the original image's pixels (not clipped to the image).
    pub bbox: Xyxy,
}

/// Greedy per-class non-maximum suppression: keeps the highest-scoring detection of each
/// class and drops same-class detections overlapping a kept one by IoU > `iou_threshold`.
/// Returns the survivors sorted by descending score (ties keep input order).
pub fn nms_per_class(mut dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        let suppressed = kept
            .iter()
            .any(|k| k.class == d.class && k.bbox.iou(&d.bbox) > iou_threshold);
        if !suppressed {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: usize, score: f32, x1: f32) -> Detection {
        Detection {
            class,
            name: String::new(),
            score,
            bbox: Xyxy {
                x1,
                y1: 0.0,
                x2: x1 + 10.0,
                y2: 10.0,
            },
        }
    }

    #[test]
    fn iou_of_half_overlapping_boxes() {
        let a = Xyxy {
            x1: 0.0,
            y1: 0.0,
            x2: 10.0,
            y2: 10.0,
        };
        let b = Xyxy {
            x1: 5.0,
            y1: 0.0,
            x2: 15.0,
            y2: 10.0,
        };
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
    }

    #[test]
    fn nms_suppresses_only_within_a_class() {
        let out = nms_per_class(
            vec![det(0, 0.5, 1.0), det(0, 0.9, 0.0), det(1, 0.8, 0.0)],
            0.5,
        );
        let got: Vec<(usize, f32)> = out.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.8)]);
    }

    #[test]
    fn pixel_box_adds_margin_and_clips() {
        let b = Xyxy {
            x1: 10.0,
            y1: -5.0,
            x2: 30.0,
            y2: 15.0,
        };
        let p = b.to_pixel_box(0.1, 100, 12).unwrap();
        assert_eq!(
            p,
            BBox {
                x: 8,
                y: 0,
                w: 24,
                h: 12
            }
        );
        let outside = Xyxy {
            x1: 200.0,
            y1: 0.0,
            x2: 210.0,
            y2: 5.0,
        };
        assert!(outside.to_pixel_box(0.0, 100, 100).is_none());
    }
}
