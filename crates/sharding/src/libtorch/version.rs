//! The PyTorch version of a libtorch folder; std only, so that build scripts include it too.

use std::path::Path;

/// The PyTorch version of the libtorch in `lib`: the wheel's `torch/version.py`
/// (`__version__ = '2.11.0+cu130'`) or a libtorch archive's `build-version`, local part dropped.
pub fn version_in(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    let text = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("__version__"))
                .map(|v| {
                    let v = v.trim_start_matches([' ', '=']).trim();
                    v.trim_matches(['\'', '"']).to_string()
                })
        })
        .or_else(|| std::fs::read_to_string(root.join("build-version")).ok())?;
    let v = text.trim().split('+').next()?.to_string();
    (!v.is_empty()).then_some(v)
}
