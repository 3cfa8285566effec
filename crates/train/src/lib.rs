//! Training and evaluation engine.
