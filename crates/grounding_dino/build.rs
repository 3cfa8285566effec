//! Links libtorch into this crate's tests and examples (see tools/link_libtorch.rs).
include!("../../tools/link_libtorch.rs");

fn main() {
    link_libtorch();
}
