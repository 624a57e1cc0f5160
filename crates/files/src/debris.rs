//! Crash debris: the hidden `.NAME.tmp-PID` / `.NAME.old-PID` siblings that a writer killed
//! mid-write leaves behind. Each names its writer's process id, so debris whose writer is no
//! longer alive can be told from a write in progress and removed.

use crate::{at, FileError};
use std::path::{Path, PathBuf};

/// One removed leftover.
#[derive(Debug, Clone, PartialEq)]
pub struct Debris {
    /// The file or folder removed.
    pub path: PathBuf,
    /// Bytes it held.
    pub bytes: u64,
}

/// The writer's process id of a debris name (`.x.tmp-123` → 123).
fn writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once('-')?;
    let stem = &rest[..rest.len() - tail.len() - 1];
    (stem.ends_with(".tmp") || stem.ends_with(".old"))
        .then(|| tail.parse().ok())
        .flatten()
}

/// Whether process `pid` is alive on this machine.
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the debris of dead writers directly inside `dir` and says what it removed.
pub fn remove_debris(dir: &Path) -> Result<Vec<Debris>, FileError> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    for entry in entries {
        let entry = entry.map_err(at(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = writer_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        let path = entry.path();
        let bytes = crate::tree_bytes(&path);
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        gone.map_err(at(&path))?;
        removed.push(Debris { path, bytes });
    }
    removed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_debris_give_their_writer() {
        assert_eq!(writer_pid(".step-00000004.tmp-4242"), Some(4242));
        assert_eq!(writer_pid(".config.yaml.old-7"), Some(7));
        assert_eq!(writer_pid("step-00000004"), None);
        assert_eq!(writer_pid(".lock"), None);
        assert_eq!(writer_pid(".a.tmp-x"), None);
    }

    #[test]
    fn removes_dead_writers_debris_only() {
        let dir = tempfile::tempdir().unwrap();
        // A process id far above pid_max is never alive.
        let dead = dir.path().join(".step-1.tmp-999999999");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("w"), vec![0u8; 1000]).unwrap();
        let mine = crate::tmp_path(&dir.path().join("m.json"));
        std::fs::write(&mine, "in progress").unwrap();
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let removed = remove_debris(dir.path()).unwrap();
        assert_eq!(
            removed,
            vec![Debris {
                path: dead.clone(),
                bytes: 1000
            }]
        );
        assert!(!dead.exists() && mine.exists());
        assert!(dir.path().join("keep.txt").exists());
    }
}
