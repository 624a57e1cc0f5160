//! Builds the libjpeg-turbo shim (`csrc/jpeg_scaled.c`) for scaled JPEG decoding and links the
//! system libjpeg (Debian: libjpeg62-turbo-dev, installed by scripts/setup.sh).

fn main() {
    println!("cargo:rerun-if-changed=csrc/jpeg_scaled.c");
    cc::Build::new()
        .file("csrc/jpeg_scaled.c")
        .opt_level(2)
        .warnings(true)
        .compile("palisade_jpeg");
    println!("cargo:rustc-link-lib=jpeg");
}
