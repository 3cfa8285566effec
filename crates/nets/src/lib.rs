//! Models on tch/libtorch with reference parameter names.
