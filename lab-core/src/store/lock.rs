//! One orchestration run at a time per fleet.
//!
//! The lock is an advisory `flock` on a file in the state directory, so a
//! holder that dies releases it with its last file descriptor: a lock left
//! by a dead process is simply free (and reported when taken over). The file
//! also names its holder (run id, pid, host, start time) for the message a
//! second run prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::exec::hostname;

/// Who holds (or held) a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// The run's id, for `lab unlock --force RUN_ID` and `lab resume`.
    pub run_id: String,
    /// The holder's process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// When it started, seconds since the Unix epoch.
    pub started_at: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {} (pid {} on {}, started at {})", self.run_id, self.pid, self.host, self.started_at)
    }
}

/// Why the lock could not be taken or removed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another orchestration run holds the lock {}: {}; wait for it to finish, or if it is stuck, stop it and run `lab unlock --force {}`", path.display(), holder.as_ref().map_or("a run whose record is unreadable".to_string(), |h| h.to_string()), holder.as_ref().map_or("RUN_ID", |h| h.run_id.as_str()))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, when the file says.
        holder: Option<Holder>,
    },
    /// `unlock --force` named a run that does not hold the lock.
    #[error("the lock {} is held by {}, not by run {asked}; check the run id", path.display(), holder.as_ref().map_or("nobody".to_string(), |h| h.to_string()))]
    NotHolder {
        /// The lock file.
        path: PathBuf,
        /// The run id given.
        asked: String,
        /// Who the file names.
        holder: Option<Holder>,
    },
    /// The state directory is not usable.
    #[error("cannot use the lock file {}: {source}; check that the state directory exists and is writable", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    holder: Holder,
    /// The holder the file named when this run took over a lock left by a
    /// process that is gone.
    pub taken_over_from: Option<Holder>,
}

impl RunLock {
    /// Takes the lock at `path` for `run_id`, or says who holds it.
    pub fn acquire(path: &Path, run_id: &str) -> Result<RunLock, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Bounded: each retry means the file was replaced (unlock --force)
        // between our open and our lock.
        for _ in 0..16 {
            let mut file =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Held { path: path.to_path_buf(), holder: settled_holder(&mut file) });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if !same_file(&file, path) {
                continue;
            }
            let previous = read_holder(&mut file);
            let holder = Holder {
                run_id: run_id.to_string(),
                pid: std::process::id(),
                host: hostname(),
                started_at: super::now_ms() / 1000,
            };
            let text = serde_json::to_string(&holder).unwrap_or_default();
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok(RunLock { file, path: path.to_path_buf(), holder, taken_over_from: previous });
        }
        Err(LockError::Held { path: path.to_path_buf(), holder: None })
    }

    /// Who holds this lock: this run.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Removes the lock file of `run_id` whoever holds it (the holder, if
    /// still alive, keeps running but no longer excludes new runs).
    pub fn force_unlock(path: &Path, run_id: &str) -> Result<Option<Holder>, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LockError::NotHolder { path: path.to_path_buf(), asked: run_id.into(), holder: None })
            }
            Err(e) => return Err(io(e)),
        };
        let holder = read_holder(&mut file);
        if holder.as_ref().map(|h| h.run_id.as_str()) != Some(run_id) {
            return Err(LockError::NotHolder { path: path.to_path_buf(), asked: run_id.into(), holder });
        }
        std::fs::remove_file(path).map_err(io)?;
        Ok(holder)
    }

    /// The holder named in the lock file at `path`, if any, without locking.
    pub fn peek(path: &Path) -> Option<Holder> {
        File::open(path).ok().and_then(|mut f| read_holder(&mut f))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove the file only while it is still ours, then unlock.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// The holder of a lock just found held. A run that has only just taken it
/// may still be writing its record, so an unreadable record is read again
/// for a moment (bounded) before it is reported as such.
fn settled_holder(file: &mut File) -> Option<Holder> {
    for _ in 0..50 {
        if let Some(holder) = read_holder(file) {
            return Some(holder);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    read_holder(file)
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_run_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet/lock");
        let first = RunLock::acquire(&path, "run-1").unwrap();
        assert!(first.taken_over_from.is_none());
        let err = RunLock::acquire(&path, "run-2").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("run run-1 (pid "), "{message}");
        assert!(message.contains("lab unlock --force run-1"), "{message}");
        drop(first);
        assert!(!path.exists(), "a finished run removes its lock file");
        RunLock::acquire(&path, "run-2").unwrap();
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let dead = Holder { run_id: "old".into(), pid: 999_999_999, host: hostname(), started_at: 1 };
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let lock = RunLock::acquire(&path, "new").unwrap();
        assert_eq!(lock.taken_over_from, Some(dead));
        assert_eq!(RunLock::peek(&path).unwrap().run_id, "new");
    }

    #[test]
    fn force_unlock_needs_the_right_run_id_and_frees_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = RunLock::acquire(&path, "stuck").unwrap();
        assert!(matches!(RunLock::force_unlock(&path, "other"), Err(LockError::NotHolder { .. })));
        assert_eq!(RunLock::force_unlock(&path, "stuck").unwrap().unwrap().run_id, "stuck");
        let next = RunLock::acquire(&path, "next").unwrap();
        // The old holder's drop must not remove the new run's file.
        drop(held);
        assert_eq!(RunLock::peek(&path).unwrap().run_id, "next");
        drop(next);
    }

    #[test]
    fn racing_runs_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    RunLock::acquire(&path, &format!("r{i}")).ok().map(|lock| {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        lock.holder().run_id.clone()
                    })
                })
            })
            .collect();
        let winners: Vec<_> = handles.into_iter().filter_map(|h| h.join().unwrap()).collect();
        assert_eq!(winners.len(), 1, "{winners:?}");
    }
}
