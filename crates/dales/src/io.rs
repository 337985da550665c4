//! Atomic file writes: results are never half-written.
//!
//! A file is written under a temporary name in its directory, flushed to disk and renamed over
//! the target. The temporary name is `.tmp-PID-N.NAME` (the writer's process id, a counter and
//! the target's name, shortened from the front to fit the file-name limit), so that it keeps
//! the target's extension (plotters picks the image format from it) and so that a run
//! directory's next owner can tell the leftovers of a killed writer ([`stale_temporary`]).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The longest file name most file systems take, in bytes.
const NAME_MAX: usize = 255;

/// The prefix of every temporary name.
const TEMP_PREFIX: &str = ".tmp-";

/// Write `bytes` to `path` atomically: a crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_atomic(path, |tmp| {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)
    })
}

/// Make `path` atomically with `write`, which creates the file it is given (a temporary
/// beside `path` with the same extension); the result is flushed to disk and renamed over
/// `path`. On an error the temporary is removed.
pub fn replace_atomic(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        write(&tmp)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Persist the rename itself; not every platform can open a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// A temporary name beside `path`, unique per process and call, within the file-name limit.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("{TEMP_PREFIX}{}-{n}.", std::process::id());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the end of the name (its extension), cut at a character boundary.
    let room = NAME_MAX - prefix.len();
    let mut start = name.len().saturating_sub(room);
    while !name.is_char_boundary(start) {
        start += 1;
    }
    path.with_file_name(format!("{prefix}{}", &name[start..]))
}

/// Whether `name` is the temporary file of a writer that no longer runs (another process
/// whose id is not alive; where liveness cannot be checked, any other process).
pub fn stale_temporary(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    !(proc.is_dir() && proc.join(pid.to_string()).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("dales-io-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let err = write_atomic(&dir.join("missing/b.txt"), b"x").unwrap_err();
        assert!(err.to_string().contains("missing/b.txt"), "{err}");
        // A name of the full 255 bytes still gets a temporary that fits.
        let long = dir.join(format!("{}.csv", "é".repeat(125)));
        write_atomic(&long, b"long").unwrap();
        assert_eq!(fs::read(&long).unwrap(), b"long");
        // A failing writer leaves nothing behind.
        let failed = replace_atomic(&dir.join("c.png"), |tmp| {
            fs::write(tmp, b"half")?;
            Err(std::io::Error::other("drawing failed"))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_keep_the_extension_and_are_told_apart() {
        let tmp = temp_path(Path::new("run/curves.png"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with(".curves.png"), "{name}");
        // Ours is in use; a dead process's is stale; other names are not temporaries.
        assert!(!stale_temporary(name));
        assert!(stale_temporary(".tmp-4194304999-3.metrics.csv"));
        assert!(!stale_temporary(".tmp-x-3.metrics.csv"));
        assert!(!stale_temporary("metrics.csv"));
        assert!(!stale_temporary(".lock"));
    }
}
