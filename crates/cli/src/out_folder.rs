//! Writing output folders whole: filled under a temporary name, then renamed into place.

use anyhow::{Context, Result};
use std::path::Path;

/// Refuses an existing `out`, fills a sibling temporary folder, then renames it to `out`.
pub fn write_folder(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    anyhow::ensure!(
        !out.exists(),
        "{}: already exists; choose a new --out folder",
        out.display()
    );
    let tmp = out.with_extension("writing");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    fill(&tmp)?;
    std::fs::rename(&tmp, out).with_context(|| out.display().to_string())
}
