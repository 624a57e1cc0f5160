//! Embeds libtorch's folder as an rpath so `palisade` runs without LD_LIBRARY_PATH, and records
//! the PyTorch version it is built against (`PALISADE_BUILT_TORCH`), checked at start-up.

#[path = "../sharding/src/libtorch/version.rs"]
mod version;

fn main() {
    println!("cargo:rerun-if-env-changed=PALISADE_TORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let lib = std::env::var("PALISADE_TORCH_LIB")
        .ok()
        .or_else(|| std::env::var("LIBTORCH").ok().map(|p| format!("{p}/lib")));
    if let Some(lib) = &lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    let built = lib
        .and_then(|l| version::version_in(std::path::Path::new(&l)))
        .unwrap_or_default();
    println!("cargo:rustc-env=PALISADE_BUILT_TORCH={built}");
}
