//! What an evaluation stopped at `--eval-timeout` had done, so the error
//! names the host that hangs and the healthy ones.
//!
//! The fleet is read by a few nix processes, each reading its share of the
//! hosts one after the other (see `run`). A killed process gives no result,
//! so expr.nix traces its progress on stderr as it goes: its list of hosts,
//! then each host as it starts and as it is read. From the stopped
//! processes' stderr (and the results of those that ended) lab knows, per
//! host, whether it was read, was being read when nix was stopped (the one
//! that hangs, one per process at most), or was not reached. Nothing is
//! evaluated again past the deadline: the timeout stays a bound.

use std::collections::BTreeSet;
use std::time::Duration;

use super::nix::Progress;
use crate::printable::printable;

/// An evaluation stopped at its timeout, and how far it had got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stopped {
    /// The timeout.
    pub after: Duration,
    /// Hosts nix was reading when it was stopped: the slow or looping ones.
    pub running: Vec<String>,
    /// Hosts not reached before the deadline (in a chunk process, waiting
    /// behind a running one): healthy or not, unknown.
    pub waiting: Vec<String>,
    /// Hosts read in time.
    pub finished: Vec<String>,
    /// True when a stopped process had not yet listed its hosts (nix was
    /// still loading the fleet itself), so some hosts are in no list.
    pub unlisted: bool,
}

impl Stopped {
    /// Stopped after `after`, with nothing known of its progress.
    pub fn after(after: Duration) -> Stopped {
        Stopped { after, unlisted: true, ..Stopped::default() }
    }

    /// Adds what one stopped chunk process had done.
    pub(crate) fn add_progress(&mut self, progress: &Progress) {
        let Some(hosts) = &progress.hosts else {
            self.unlisted = true;
            return;
        };
        for host in hosts {
            let list = if progress.done.contains(host) {
                &mut self.finished
            } else if progress.started.contains(host) {
                &mut self.running
            } else {
                &mut self.waiting
            };
            list.push(host.clone());
        }
    }

    /// Sorts and dedups every list, for deterministic messages.
    pub(crate) fn settle(mut self, after: Duration) -> Stopped {
        self.after = after;
        for list in [&mut self.running, &mut self.waiting, &mut self.finished] {
            *list = std::mem::take(list).into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        }
        self
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raise = crate::hint::Hint::RaiseEvalTimeout;
        write!(f, "evaluation exceeded {raise} ({}s) and was stopped", self.after.as_secs_f64())?;
        if self.running.is_empty() && self.waiting.is_empty() && self.finished.is_empty() {
            return write!(
                f,
                " before any host was read (nix was still loading the fleet); raise {raise}, or look at the fleet's top-level expression"
            );
        }
        write!(f, "; still evaluating: {}", names(&self.running))?;
        if !self.waiting.is_empty() {
            write!(f, "; not reached: {}", names(&self.waiting))?;
        }
        write!(f, "; finished: {}", names(&self.finished))?;
        if self.unlisted {
            write!(f, "; other hosts were not listed yet")?;
        }
        write!(f, "; look for a loop or a slow import in the hosts still evaluating, or raise {raise}")
    }
}

/// `a`, `b` and 3 more; "none" for none.
fn names(list: &[String]) -> String {
    const SHOWN: usize = 10;
    if list.is_empty() {
        return "none".into();
    }
    let mut out: Vec<String> = list.iter().take(SHOWN).map(|n| format!("`{}`", printable(n))).collect();
    if list.len() > SHOWN {
        out.push(format!("and {} more", list.len() - SHOWN));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_running_the_waiting_and_the_finished() {
        let mut stopped = Stopped::default();
        stopped.add_progress(&Progress::from_stderr(
            "warning: x\ntrace: lab-hosts [\"a\",\"slow\",\"z\"]\ntrace: lab-start \"a\"\ntrace: lab-done \"a\"\ntrace: lab-start \"slow\"\n",
        ));
        stopped.finished.push("b".into());
        let stopped = stopped.settle(Duration::from_secs(2));
        assert_eq!(
            stopped.to_string(),
            "evaluation exceeded --eval-timeout (2s) and was stopped; still evaluating: `slow`; not reached: `z`; finished: `a`, `b`; look for a loop or a slow import in the hosts still evaluating, or raise --eval-timeout"
        );
        assert!(Stopped::after(Duration::from_secs(1)).to_string().contains("before any host was read"));
    }
}
