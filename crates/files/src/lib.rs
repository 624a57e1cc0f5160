//! Files and folders written whole. Each is filled under a hidden temporary name beside its
//! target (`.NAME.tmp-PID`) and renamed onto it when complete, so a reader never sees half of
//! one and a failed write leaves the old one as it was. This is palisade's one way of doing so:
//! shards, weights, configs, checkpoints, metric logs and reports all go through it.
//! Contents are fsynced before the rename and the folder after it, so a power loss leaves the
//! old version or the new one, never a complete-looking half.

mod debris;
mod lock;
mod space;

pub use debris::{remove_debris, Debris};
pub use lock::{hostname, FolderLock, LOCK_FILE};
pub use space::{ensure_free, free_bytes, tree_bytes};

use std::io;
use std::path::{Path, PathBuf};

/// An I/O failure, naming the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file or folder.
    pub path: PathBuf,
    /// What the operating system said.
    #[source]
    pub source: io::Error,
}

impl FileError {
    /// The error of `source` on `path`.
    pub fn new(path: impl Into<PathBuf>, source: io::Error) -> FileError {
        FileError {
            path: path.into(),
            source,
        }
    }
}

/// Maps an `io::Error` to a [`FileError`] naming `path` (for `map_err`).
pub fn at(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FileError {
    let path = path.into();
    move |source| FileError { path, source }
}

/// The hidden sibling that `path` is written under: `.NAME.tmp-PID`.
pub fn tmp_path(path: &Path) -> PathBuf {
    sibling(path, "tmp")
}

/// `.NAME.TAG-PID` beside `path`; the process id keeps concurrent writers apart.
pub(crate) fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Writes `bytes` to `path` whole.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), FileError> {
    write_with(path, |tmp| {
        std::fs::write(tmp, bytes.as_ref()).map_err(at(tmp))
    })
}

/// Writes `path` whole: `fill` writes the temporary file it is given, which is then renamed
/// onto `path`. When `fill` fails the temporary file is removed and `path` is untouched.
pub fn write_with<E: From<FileError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = tmp_path(path);
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let renamed = sync_file(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(at(path)));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(E::from(e));
    }
    Ok(sync_parent(path)?)
}

/// Moves a temporary file written by the caller (at [`tmp_path`]`(path)`) onto `path`, for
/// writers that stream into the file over many calls.
pub fn commit(path: &Path) -> Result<(), FileError> {
    let tmp = tmp_path(path);
    sync_file(&tmp)?;
    std::fs::rename(&tmp, path).map_err(at(path))?;
    sync_parent(path)
}

/// Flushes a file's contents to the device.
fn sync_file(path: &Path) -> Result<(), FileError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(at(path))
}

/// Flushes the folder entry of `path` (its name) to the device.
fn sync_parent(path: &Path) -> Result<(), FileError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => sync_file(dir),
        None => sync_file(Path::new(".")),
    }
}

/// Flushes every file under `dir`, and the folders themselves.
fn sync_tree(dir: &Path) -> Result<(), FileError> {
    for entry in std::fs::read_dir(dir).map_err(at(dir))? {
        let entry = entry.map_err(at(dir))?;
        let p = entry.path();
        if entry.file_type().map_err(at(&p))?.is_dir() {
            sync_tree(&p)?;
        } else {
            sync_file(&p)?;
        }
    }
    sync_file(dir)
}

/// Writes the folder `path` whole: `fill` fills an empty temporary folder, which then takes the
/// place of `path` (an existing folder there is swapped out and removed). When `fill` fails the
/// temporary folder is removed and `path` is untouched.
pub fn write_dir<T, E: From<FileError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = tmp_path(path);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(at(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(at(&tmp))?;
    let value = match fill(&tmp).and_then(|v| Ok(sync_tree(&tmp).map(|()| v)?)) {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if path.exists() {
        let old = sibling(path, "old");
        std::fs::rename(path, &old).map_err(at(path))?;
        std::fs::rename(&tmp, path).map_err(at(path))?;
        std::fs::remove_dir_all(&old).map_err(at(&old))?;
    } else {
        std::fs::rename(&tmp, path).map_err(at(path))?;
    }
    sync_parent(path)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_is_a_hidden_sibling() {
        let tmp = tmp_path(Path::new("/a/b/x.parquet"));
        assert_eq!(tmp.parent(), Some(Path::new("/a/b")));
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!(".x.parquet.tmp-{}", std::process::id()));
    }

    #[test]
    fn a_file_is_replaced_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        write(&path, "old").unwrap();
        write(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let err = write_with(&path, |tmp| {
            std::fs::write(tmp, "half").unwrap();
            Err(FileError::new(tmp, io::Error::other("disk full")))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no debris"
        );
    }

    #[test]
    fn a_folder_is_swapped_in_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ckpt");
        let fill = |text: &'static str| {
            move |d: &Path| -> Result<(), FileError> {
                std::fs::write(d.join("a"), text).map_err(at(d))
            }
        };
        write_dir(&out, fill("1")).unwrap();
        write_dir(&out, fill("2")).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("a")).unwrap(), "2");
        let failed: Result<(), FileError> = write_dir(&out, |d| {
            std::fs::write(d.join("a"), "3").unwrap();
            Err(FileError::new(d, io::Error::other("boom")))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(out.join("a")).unwrap(), "2");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no debris"
        );
    }
}
