//! One writer per folder: an exclusive `flock` on `FOLDER/.lock`, held for as long as the
//! [`FolderLock`] lives. The kernel drops the lock when its holder dies, however it dies, so a
//! lock file left behind by a crash is taken over (and said so); the file records who holds it
//! (PID and host) so a refused writer can be told whom it collides with.

use crate::{at, FileError};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Name of the lock file inside a locked folder.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a folder, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FolderLock {
    file: File,
    path: PathBuf,
    /// The holder recorded by a previous process that died holding it, if any.
    pub took_over: Option<String>,
}

/// `PID HOST` of this process.
fn holder() -> String {
    format!("pid {} on host {}", std::process::id(), hostname())
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl FolderLock {
    /// Locks `dir` (created if missing) for this process, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock, FileError> {
        std::fs::create_dir_all(dir).map_err(at(dir))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(at(&path))?;
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        let mut recorded = String::new();
        let _ = file.read_to_string(&mut recorded);
        let recorded = recorded.trim().to_string();
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(FileError::new(&path, err));
            }
            let who = if recorded.is_empty() {
                "another process".to_string()
            } else {
                recorded
            };
            return Err(FileError::new(
                dir,
                io::Error::other(format!(
                    "this folder is in use by {who}: one process writes a folder at a time \
                     (stop that one, or choose another folder)"
                )),
            ));
        }
        let fill = |f: &mut File| -> io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", holder())?;
            f.sync_all()
        };
        fill(&mut file).map_err(at(&path))?;
        Ok(FolderLock {
            file,
            path,
            took_over: (!recorded.is_empty()).then_some(recorded),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Emptied, so the next holder does not report taking over from a live exit.
        let _ = self.file.set_len(0);
        // SAFETY: unlocks the descriptor this lock owns (closing it would too).
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_by_name_and_a_dead_ones_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = FolderLock::acquire(dir.path()).unwrap();
        assert!(first.took_over.is_none());
        // flock locks belong to the open file, so a second open in this process collides too.
        let err = FolderLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by pid"), "{err}");
        assert!(err.contains(&hostname()), "{err}");
        drop(first);
        let again = FolderLock::acquire(dir.path()).unwrap();
        assert!(again.took_over.is_none(), "a clean release is not stale");
        // A holder that died leaves its record in the file but no lock.
        let path = again.path.clone();
        drop(again);
        std::fs::write(&path, "pid 1 on host elsewhere\n").unwrap();
        let taken = FolderLock::acquire(dir.path()).unwrap();
        assert_eq!(taken.took_over.as_deref(), Some("pid 1 on host elsewhere"));
    }
}
