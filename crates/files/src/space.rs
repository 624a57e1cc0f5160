//! Disk space: what a folder holds and what its file system has free, so a big write can be
//! refused up front with both numbers instead of failing half-way.

use crate::{at, FileError};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes of every file under `path` (0 if it does not exist).
pub fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| tree_bytes(&e.path()))
        .sum()
}

/// Bytes an unprivileged writer can still use on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64, FileError> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| FileError::new(path, std::io::Error::other(e)))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs fills the struct it is given for a NUL-terminated path.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(FileError::new(path, std::io::Error::last_os_error()));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Refuses, with both numbers, when the file system of `dir` has less than `needed` bytes free.
pub fn ensure_free(dir: &Path, needed: u64, what: &str) -> Result<(), FileError> {
    let free = free_bytes(dir)?;
    if free >= needed {
        return Ok(());
    }
    let err = std::io::Error::new(
        std::io::ErrorKind::StorageFull,
        format!("{what} needs {needed} bytes but only {free} are free there"),
    );
    Err(at(dir)(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 300]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 50]).unwrap();
        assert_eq!(tree_bytes(dir.path()), 350);
        assert!(free_bytes(dir.path()).unwrap() > 0);
        ensure_free(dir.path(), 1, "a test").unwrap();
        let err = ensure_free(dir.path(), u64::MAX, "a checkpoint")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a checkpoint needs 18446744073709551615 bytes"),
            "{err}"
        );
    }
}
