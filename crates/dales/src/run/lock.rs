//! Who owns a run directory: one writer at a time.
//!
//! A writer holds an exclusive OS lock on the directory's `.lock` file for as long as it writes
//! (a training run, a resumed run). The OS releases the lock when the process exits, however it
//! exits, so a killed run never leaves its directory locked. The file holds the owner's process
//! id, so that a refused writer can say who has the directory.
//!
//! Holding the lock, a writer also removes the temporary files that writers killed in the
//! middle of an atomic write left behind ([`crate::io::write_atomic`] names them).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::stale_temporary;

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive hold on a run directory, released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Lock the directory `dir` for writing. Another live holder is an [`Error::InUse`]
    /// naming its process; the temporary files of dead writers are removed.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        if !dir.is_dir() {
            return Err(Error::run(dir, "no such directory"));
        }
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                return Err(Error::InUse {
                    dir: dir.to_path_buf(),
                    pid: owner.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let pid = std::process::id();
        let stamp = (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{pid}")
        })();
        stamp.map_err(|e| Error::io(&path, e))?;
        remove_stale_temporaries(dir)?;
        Ok(RunLock { _file: file })
    }

    /// Create `dir` if missing and lock it.
    pub fn create(dir: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        RunLock::acquire(dir)
    }
}

/// Remove the temporary files in `dir` that no live process is writing.
fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if stale_temporary(&name.to_string_lossy()) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}
