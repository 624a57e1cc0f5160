//! Atomic file replacement: write under a temporary name, then rename.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// A hidden sibling of `path` to write into, so readers never see a half-written file.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Moves a finished temporary file onto its final name.
pub(crate) fn commit(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|e| DataError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_is_hidden_sibling() {
        let tmp = tmp_path(Path::new("/a/b/x.parquet"));
        assert_eq!(tmp.parent(), Some(Path::new("/a/b")));
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".x.parquet.tmp-"), "{name}");
    }

    #[test]
    fn commit_replaces_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "old").unwrap();
        let tmp = tmp_path(&path);
        std::fs::write(&tmp, "new").unwrap();
        commit(&tmp, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!tmp.exists());
    }
}
