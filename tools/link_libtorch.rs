// Included by the build scripts of the crates whose binaries, tests and examples link libtorch
// (through tch). Each such crate depends on `torch-sys` directly, so Cargo hands its build script
// `DEP_TCH_LIBTORCH_LIB`, the folder of the libtorch it was built against.
//
// - rpath: the binaries find libtorch without LD_LIBRARY_PATH (which, when set, still wins);
// - `--no-as-needed -ltorch`: keeps libtorch (and through it libtorch_cuda) in the link even
//   though no Rust code calls it directly; otherwise the linker drops it and CUDA is invisible.
fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.to_string_lossy());
        }
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
