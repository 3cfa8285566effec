//! Multi-threaded prefetching loader: samples, De-DA combination and transforms into batches.
