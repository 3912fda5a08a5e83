//! One nix process, watched: its stderr read line by line as nix writes it
//! (expr.nix traces each host's result there as it is read), its memory
//! sampled, and the whole process group killed at the deadline, on
//! cancellation or when the caller decides it has grown too large.

use std::io::{BufRead, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;

/// What stops a process early.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch<'a> {
    /// Kill at this instant.
    pub deadline: Option<Instant>,
    /// Kill once cancelled.
    pub cancel: Option<&'a CancelToken>,
}

/// Why a process was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Killed {
    /// The deadline passed.
    Deadline,
    /// The evaluation was cancelled.
    Cancelled,
    /// The caller's line handler asked (the worker grew past its bound).
    Asked,
}

/// How a watched process ended.
#[derive(Debug)]
pub(crate) struct Ended {
    /// Exited successfully.
    pub success: bool,
    /// Killed, and why (then `success` is false).
    pub killed: Option<Killed>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// The largest resident set seen, in bytes.
    pub peak: u64,
}

/// What the line handler tells the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go on.
    Continue,
    /// Kill the process (its work so far is in the lines already seen).
    Kill,
}

/// How often the watcher looks at the deadline, the token and the memory
/// when nix writes nothing.
const TICK: Duration = Duration::from_millis(25);

/// Runs `program args` in its own process group and waits for it, passing
/// each stderr line to `on_line` with the process's current resident set
/// in bytes.
pub(crate) fn run(
    program: &Path,
    args: &[&str],
    watch: Watch<'_>,
    mut on_line: impl FnMut(&str, u64) -> Verdict,
) -> std::io::Result<Ended> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that killing it also kills what it started (git,
        // fetchers) and no pipe stays open behind it.
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let mut stdout_pipe = child.stdout.take().expect("piped");
    let stderr_pipe = child.stderr.take().expect("piped");
    let stdout = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut out);
        out
    });
    let (lines, receive) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stderr = std::io::BufReader::new(stderr_pipe);
        let mut line = Vec::new();
        while matches!(stderr.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if lines.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                break;
            }
            line.clear();
        }
    });
    let mut stderr = String::new();
    let mut peak = 0;
    let mut killed = None;
    loop {
        let line = receive.recv_timeout(TICK);
        let rss = resident(pid);
        peak = peak.max(rss);
        match line {
            Ok(line) => {
                if killed.is_none() && on_line(line.trim_end_matches('\n'), rss) == Verdict::Kill {
                    killed = Some(Killed::Asked);
                    kill_group(pid);
                }
                stderr.push_str(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if killed.is_none() {
            if watch.cancel.is_some_and(CancelToken::is_cancelled) {
                killed = Some(Killed::Cancelled);
            } else if watch.deadline.is_some_and(|d| Instant::now() >= d) {
                killed = Some(Killed::Deadline);
            }
            if killed.is_some() {
                kill_group(pid);
            }
        }
    }
    let status = child.wait()?;
    let _ = reader.join();
    let stdout = stdout.join().unwrap_or_default();
    Ok(Ended { success: status.success() && killed.is_none(), killed, stdout, stderr, peak })
}

/// SIGKILL to the process group `pid` leads.
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// The resident set of `pid` in bytes (0 when it cannot be read).
fn resident(pid: u32) -> u64 {
    let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm")) else { return 0 };
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_lines_and_kills_the_group_on_cancel() {
        let cancel = CancelToken::new();
        let watch = Watch { deadline: Some(Instant::now() + Duration::from_secs(30)), cancel: Some(&cancel) };
        let started = Instant::now();
        let mut seen = Vec::new();
        // A child that would outlive its parent's kill if only the parent
        // were killed: sleep holds stderr open.
        let ended = run(Path::new("sh"), &["-c", "echo one >&2; sleep 60 & echo two >&2; wait"], watch, |line, _| {
            seen.push(line.to_string());
            if line == "two" {
                cancel.cancel();
            }
            Verdict::Continue
        })
        .unwrap();
        assert_eq!(seen, ["one", "two"]);
        assert_eq!(ended.killed, Some(Killed::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(20), "the group was killed, sleep included");
    }
}
