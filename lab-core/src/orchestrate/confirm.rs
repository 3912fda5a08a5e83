//! After an activation, lab must reach the machine again over a fresh
//! connection and disarm its watchdogs within confirmTimeout; otherwise the
//! machine rolls itself back (deploy-rs's "magic rollback"). A configuration
//! that breaks networking or sshd thereby undoes itself. Confirming starts
//! only once the switch's exit status is known and 0 (activation.rs); it
//! stops the watchdogs, verifies none is left and reads the running system.

use std::time::Duration;

use tokio::time::Instant;

use super::ctx::Ctx;
use crate::health::seconds;
use crate::remote::{Activated, DisarmError};

/// Pause between attempts to reach the machine.
const RETRY: Duration = Duration::from_millis(500);
/// How long after confirmTimeout lab keeps looking, to report what the
/// watchdog did.
const AFTERMATH: Duration = Duration::from_secs(60);

/// What confirming found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Confirmed {
    /// Reached, watchdogs stopped, the new system runs.
    Yes,
    /// Reached, but a watchdog could not be stopped or is still there
    /// (armed, or its rollback running): never reported as confirmed.
    StillArmed {
        /// What is left and what to do.
        error: String,
    },
    /// Reached, but the watchdog had already rolled it back.
    RolledBack {
        /// What it runs.
        current: String,
    },
    /// Not reached in time; `after` is what it ran when reached later.
    Unreachable {
        /// The last error.
        error: String,
        /// What it runs once reachable again (within the aftermath).
        after: Option<String>,
    },
}

/// Reaches `name` over fresh connections until confirmTimeout, disarms the
/// watchdogs, verifies they are gone and reads what it runs.
pub(super) async fn confirm(ctx: &Ctx<'_>, name: &str, activated: &Activated, system: &str) -> Confirmed {
    let timeout = seconds(ctx.machine(name).metadata.orchestration.confirm_timeout);
    let deadline = Instant::now() + timeout;
    let exec = ctx.exec(name);
    let remote = ctx.remote(name);
    if ctx.rt.dry_run {
        // Show the commands; a dry run's machine answers nothing to judge.
        let _ = remote.disarm(&activated.tools, &activated.rollback.timers).await;
        let _ = remote.current_system().await;
        return Confirmed::Yes;
    }
    let mut error;
    loop {
        // A fresh connection: the one activation used may survive a broken
        // sshd and prove nothing.
        exec.close().await;
        let attempt = async {
            remote.disarm(&activated.tools, &activated.rollback.timers).await?;
            Ok::<_, DisarmError>(remote.current_system().await?)
        };
        match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()) + RETRY, attempt).await {
            Ok(Ok(current)) if current == system => return Confirmed::Yes,
            Ok(Ok(current)) => return Confirmed::RolledBack { current },
            // The machine answered and refused, or a watchdog is left: asking
            // again would not change that before it fires.
            Ok(Err(e @ (DisarmError::Refused { .. } | DisarmError::StillArmed { .. }))) => {
                return Confirmed::StillArmed { error: e.to_string() }
            }
            Ok(Err(DisarmError::Exec(e))) => error = e.to_string(),
            Err(_) => error = "no answer".into(),
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
    // The watchdog fires now; see what it did, bounded.
    let until = Instant::now() + timeout + AFTERMATH;
    while Instant::now() < until {
        exec.close().await;
        if let Ok(Ok(current)) = tokio::time::timeout(AFTERMATH, remote.current_system()).await {
            if current == activated.rollback.system {
                return Confirmed::Unreachable { error, after: Some(current) };
            }
        }
        tokio::time::sleep(RETRY * 2).await;
    }
    Confirmed::Unreachable { error, after: None }
}
