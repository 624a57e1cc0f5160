//! Embeds libtorch's folder as an rpath so `palisade` runs without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=PALISADE_TORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let lib = std::env::var("PALISADE_TORCH_LIB")
        .ok()
        .or_else(|| std::env::var("LIBTORCH").ok().map(|p| format!("{p}/lib")));
    if let Some(lib) = lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
