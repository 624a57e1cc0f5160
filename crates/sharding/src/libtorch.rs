//! Which libtorch this process runs on: its folder (read from the memory map) and its version
//! (from the PyTorch install around it), to check against the version palisade was built for.

mod version;

use std::path::{Path, PathBuf};
pub use version::version_in;

/// The folder of the `libtorch_cpu.so` this process has loaded.
pub fn loaded_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| Path::new(p).parent().map(PathBuf::from))
}

/// Loads `libtorch_cuda.so` beside the loaded libtorch, which registers CUDA with it. Nothing
/// in palisade calls into it directly, so the linker leaves it out (`--as-needed`) and CPU runs
/// never pay for mapping the CUDA libraries (~400 MB resident); asking for a CUDA device loads
/// it first. Idempotent; the error names the file and the loader's reason.
pub fn load_cuda() -> Result<(), String> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let dir = loaded_dir().ok_or("libtorch_cpu.so is not loaded in this process")?;
            let path = dir.join("libtorch_cuda.so");
            if !path.exists() {
                return Err(format!(
                    "{} does not exist: this PyTorch is a CPU-only build",
                    path.display()
                ));
            }
            crate::dl::open(&path, libc::RTLD_NOW | libc::RTLD_GLOBAL)
                .map_err(|why| format!("loading {}: {why}", path.display()))?;
            Ok(())
        })
        .clone()
}

/// `major.minor` of a version string (`2.11.0` → `2.11`): what a libtorch build is tied to.
pub fn major_minor(version: &str) -> &str {
    match version.match_indices('.').nth(1) {
        Some((i, _)) => &version[..i],
        None => version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wheels_version_and_an_archives() {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("torch/lib");
        std::fs::create_dir_all(&lib).unwrap();
        assert_eq!(version_in(&lib), None);
        std::fs::write(
            d.path().join("torch/version.py"),
            "from typing import Optional\n__version__ = '2.11.0+cu130'\ngit_version = 'x'\n",
        )
        .unwrap();
        assert_eq!(version_in(&lib).as_deref(), Some("2.11.0"));
        let archive = d.path().join("libtorch");
        std::fs::create_dir_all(archive.join("lib")).unwrap();
        std::fs::write(archive.join("build-version"), "2.13.0+cpu\n").unwrap();
        assert_eq!(version_in(&archive.join("lib")).as_deref(), Some("2.13.0"));
        assert_eq!(major_minor("2.13.0"), "2.13");
        assert_eq!(major_minor("2.11"), "2.11");
    }

    #[test]
    fn finds_the_loaded_libtorch_and_its_version() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let dir = loaded_dir().expect("libtorch_cpu.so is mapped");
        assert!(dir.join("libtorch_cpu.so").exists(), "{}", dir.display());
        let v = version_in(&dir).expect("a PyTorch wheel's torch/version.py");
        assert!(v.starts_with("2."), "{v}");
    }
}
