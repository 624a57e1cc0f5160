//! Compiles the small C++ shims: bfloat16 autocast on the CPU or CUDA, dropping gradients,
//! libtorch's multi-tensor optimiser kernels and the tensor-parallel autograd functions.

use std::path::PathBuf;
use std::process::Command;

/// libtorch's include folder: from PALISADE_TORCH_LIB or LIBTORCH, else from the Python torch.
fn torch_include() -> PathBuf {
    if let Ok(lib) = std::env::var("PALISADE_TORCH_LIB") {
        return PathBuf::from(lib).join("../include");
    }
    if let Ok(root) = std::env::var("LIBTORCH") {
        return PathBuf::from(root).join("include");
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'include'))",
        ])
        .output()
        .expect("run python to locate torch (set PALISADE_TORCH_LIB or LIBTORCH)");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn main() {
    println!("cargo:rerun-if-changed=cpp/autocast.cpp");
    println!("cargo:rerun-if-changed=cpp/grad.cpp");
    println!("cargo:rerun-if-changed=cpp/fused.cpp");
    println!("cargo:rerun-if-changed=cpp/tensor_parallel.cpp");
    println!("cargo:rerun-if-env-changed=PALISADE_TORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    cc::Build::new()
        .cpp(true)
        .file("cpp/autocast.cpp")
        .file("cpp/grad.cpp")
        .file("cpp/fused.cpp")
        .file("cpp/tensor_parallel.cpp")
        .include(torch_include())
        .flag("-std=c++20")
        .flag("-w")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .compile("palisade_autocast");
}
