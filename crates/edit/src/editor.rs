//! [`CutoutEditor`]: what the generative stage implements to turn one CDP into a variant.
use crate::error::Result;
use image::RgbaImage;

/// Makes synthetic variants of a CDP (the object as an RGBA cut-out cropped to its box).
///
/// The SD-1.5 + LayerDiffuse editor (TTTI embedding, transparent SDEdit) implements this; the
/// [`IdentityEditor`] lets the pipeline run end to end without weights.
pub trait CutoutEditor {
    /// A short name recorded in the report and the bank's provenance.
    fn name(&self) -> &str;

    /// Hash of the model weights used, if any (recorded in each part's producer).
    fn weights_hash(&self) -> Option<String>;

    /// The settings that change the editor's output (strength, steps, prompt, learned tokens,
    /// …) as JSON; the stage hashes them into the producer's config hash, so variants made with
    /// other settings are not taken for this editor's. `null` (the default) for none.
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Variant `variant` of `cdp`, for the class described by `class_prompt` (the bank's class
    /// name). `seed` is derived per (CDP, variant), so the result must depend only on the
    /// arguments. The output may have another size; it must keep some visible pixel.
    ///
    /// # Errors
    /// Any failure of the model; the stage reports it with the part and variant.
    fn edit(
        &mut self,
        cdp: &RgbaImage,
        class_prompt: &str,
        variant: u32,
        seed: u64,
    ) -> Result<RgbaImage>;
}

/// Returns the CDP unchanged: the no-weights stand-in for the generative editor.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityEditor;

impl CutoutEditor for IdentityEditor {
    fn name(&self) -> &str {
        "identity"
    }

    fn weights_hash(&self) -> Option<String> {
        None
    }

    fn edit(&mut self, cdp: &RgbaImage, _: &str, _: u32, _: u64) -> Result<RgbaImage> {
        Ok(cdp.clone())
    }
}
