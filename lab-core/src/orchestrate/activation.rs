//! The activation protocol: how lab changes the system a machine runs and
//! knows, from the machine itself, how that ended. (docs/activation.md
//! tells the same for users.)
//!
//! Per machine and attempt, the unit names are deterministic
//! ([`crate::remote::Units`]: `lab-switch-…`, `lab-rollback-…`,
//! `lab-confirm-…`, `lab-undo-…`), recorded in the journal before anything
//! starts.
//!
//! 1. **Arm.** A long rollback watchdog (`lab-rollback-…`, a timer of
//!    activation bound + confirmTimeout) is armed; then the profile is set
//!    (switch and boot goals).
//! 2. **Start detached.** `systemd-run --unit=lab-switch-…` (no `--wait`,
//!    no `--pipe`) starts the switch and returns. Its output goes to
//!    `/run/lab/UNIT.log` on the machine, never through a pipe to lab
//!    (a real switch-to-configuration exits 101 at its next print once its
//!    output closes, nixpkgs #462179). When the switch has ended, the unit
//!    arms the confirmation watchdog (`lab-confirm-…`, confirmTimeout)
//!    and only then writes the switch's exit status to
//!    `/run/lab/UNIT.status` (a temporary file, then `mv`: the file is
//!    whole or absent).
//! 3. **Follow.** lab polls the unit by its name ([`follow`]: one round
//!    trip reads the status file, else the unit's state), over fresh
//!    connections when the connection drops, bounded by the activation
//!    bound. Outcomes:
//!    - a status: the switch ended and the watchdog is armed;
//!    - no status and the unit not running: the switch died (killed, or the
//!      machine rebooted); the machine fails with that reason and lab rolls
//!      it back;
//!    - the bound passed: the machine fails; lab does not confirm, and the
//!      long watchdog rolls it back.
//! 4. **Judge the status.** 0 is success; any other status fails the
//!    machine (the reason carries the status and the log's tail) and lab
//!    rolls it back (`lab-undo-…`, detached and followed the same way).
//! 5. **Confirm** ([`super::confirm`]), only after a status of 0: over a
//!    fresh connection within confirmTimeout, stop every watchdog timer of
//!    the attempt (`systemctl stop`; a timer already gone is fine, any other
//!    failure is not), then verify in one round trip that none of them is
//!    active and no watchdog rollback service of the attempt runs, then
//!    read the running system. Only when all three hold is the machine
//!    confirmed; a failed stop or anything still armed fails the machine,
//!    naming what is left.
//!
//! Invariant: lab reports a machine confirmed only after the switch ended
//! with status 0 and the watchdogs of every attempt of the run (those of
//! interrupted attempts included) are verified gone; so after the report
//! nothing lab left on the machine can change its system.
//!
//! Also (remote.rs, deploy.rs): every switch, lab's or a rollback's, waits
//! for switch-to-configuration's lock; a rollback cancels the other
//! watchdogs only after it switched, so none leaves the running system
//! different from the profile without a watchdog; a resumed run follows an
//! interrupted attempt's switch by its journaled name instead of starting a
//! second one, and arms its own watchdog before it stops the earlier ones.

use std::time::Duration;

use tokio::time::Instant;

use super::ctx::Ctx;
use crate::remote::{Toolset, UnitState};

/// Pause between two looks at a running unit.
const POLL: Duration = Duration::from_millis(500);
/// Longest one look may take before lab tries a fresh connection.
const LOOK: Duration = Duration::from_secs(20);

/// How a detached unit ended, as lab learned it from the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// It ended with `status` (`None`: unreadable); `log` is its output's
    /// tail.
    Status {
        /// The exit status recorded on the machine.
        status: Option<i32>,
        /// The tail of its output.
        log: String,
    },
    /// Neither running nor a recorded status: it died (or never started).
    Died,
    /// The bound passed with the unit still running or the machine not
    /// answering; `last` is what lab saw last.
    OutOfTime {
        /// The last answer or error.
        last: String,
    },
}

impl Ended {
    /// The reason a machine fails for a unit that did not end with 0, or
    /// `None` when it did.
    pub(super) fn failure(&self, what: &str, bound: Duration) -> Option<String> {
        match self {
            Ended::Status { status: Some(0), .. } => None,
            Ended::Status { status, log } => {
                let status = status.map_or("an unreadable status".to_string(), |c| format!("status {c}"));
                let log = crate::exec::tail(log.as_bytes(), 400);
                Some(format!("{what} exited with {status}: {log}"))
            }
            Ended::Died => {
                Some(format!("{what} ended without recording an exit status (it was killed, or the machine rebooted)"))
            }
            Ended::OutOfTime { last } => Some(format!(
                "{what} had not ended after the activation bound ({} s; last seen: {last})",
                bound.as_secs()
            )),
        }
    }
}

/// The longest lab follows one activation or rollback on `name`.
pub(super) fn bound(ctx: &Ctx<'_>, name: &str) -> Duration {
    crate::health::seconds(ctx.machine(name).metadata.orchestration.activation_timeout)
}

/// Follows the detached unit `unit` on `name` until it ends or `bound`
/// passes, over a fresh connection after every failed look.
pub(super) async fn follow(ctx: &Ctx<'_>, name: &str, tools: &Toolset, unit: &str, bound: Duration) -> Ended {
    if ctx.rt.dry_run {
        // Show the look; a dry run starts nothing, so it ends as asked.
        let _ = ctx.remote(name).poll(tools, unit).await;
        return Ended::Status { status: Some(0), log: String::new() };
    }
    let until = Instant::now() + bound;
    let exec = ctx.exec(name);
    let remote = ctx.remote(name);
    let mut fresh = false;
    loop {
        if fresh {
            // The connection dropped or hung: the switch runs on in its
            // unit; look again over a new one.
            exec.close().await;
        }
        let left = until.saturating_duration_since(Instant::now());
        let last = match tokio::time::timeout(LOOK.min(left.max(POLL)), remote.poll(tools, unit)).await {
            Ok(Ok(UnitState::Ended { status, log })) => return Ended::Status { status, log },
            Ok(Ok(UnitState::Gone)) => return Ended::Died,
            Ok(Ok(UnitState::Running)) => {
                fresh = false;
                "still running".to_string()
            }
            Ok(Err(e)) => {
                fresh = true;
                e.to_string()
            }
            Err(_) => {
                fresh = true;
                "no answer".to_string()
            }
        };
        if Instant::now() >= until {
            return Ended::OutOfTime { last };
        }
        tokio::time::sleep(POLL.min(until.saturating_duration_since(Instant::now()))).await;
    }
}
