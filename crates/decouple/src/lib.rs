//! Decoupling: image + mask -> CDP and filled CIP (alpha pyramid), segmenters, the decouple stage.
