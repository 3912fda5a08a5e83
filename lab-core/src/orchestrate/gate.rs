//! The health gate: a machine's checks must pass (and keep passing for
//! minHealthyTime) within healthyDeadline before anything after it moves.

use tokio::time::Instant;

use super::ctx::Ctx;
use super::events::Event;
use crate::health::{seconds, wait_healthy};
use crate::plan::{step_id, Action, PlanKind};
use crate::store::journal::{JournalError, StepState};
use crate::store::record::StepDetail;

/// Runs the health step of `machine` in `kind`. `Ok(Err(why))` when the
/// machine was not healthy in time (the step is journaled as failed).
pub(super) async fn check(ctx: &Ctx<'_>, kind: PlanKind, machine: &str) -> Result<Result<(), String>, JournalError> {
    let id = step_id(kind, machine, Action::HealthChecks);
    if ctx.prior.state(&id) == StepState::Finished {
        ctx.already_done(&id, machine);
        return Ok(Ok(()));
    }
    let m = ctx.machine(machine);
    let o = &m.metadata.orchestration;
    let checks = &m.metadata.health_checks;
    let message = format!("{} check(s), within healthyDeadline {} s", checks.len(), o.healthy_deadline);
    let step = ctx.start(kind, machine, Action::HealthChecks, message, StepDetail::None)?;
    if ctx.rt.dry_run {
        ctx.finish(&step, machine, Action::HealthChecks, "not checked in a dry run".into(), StepDetail::None)?;
        return Ok(Ok(()));
    }
    let deadline = Instant::now() + seconds(o.healthy_deadline) + seconds(o.min_healthy_time);
    match wait_healthy(ctx.prober(machine), machine, checks, seconds(o.min_healthy_time), deadline).await {
        Ok(_) => {
            ctx.finish(&step, machine, Action::HealthChecks, "healthy".into(), StepDetail::Healthy { healthy: true })?;
            ctx.rt.events.send(Event::MachineHealthy { machine: machine.into(), step });
            Ok(Ok(()))
        }
        Err(unhealthy) => {
            let why = unhealthy.to_string();
            ctx.fail(&step, machine, Action::HealthChecks, why.clone())?;
            Ok(Err(why))
        }
    }
}

/// Whether `machine` passes its checks again (after a rollback), without a step.
pub(super) async fn recheck(ctx: &Ctx<'_>, machine: &str) -> bool {
    if ctx.rt.dry_run {
        return true;
    }
    let m = ctx.machine(machine);
    let o = &m.metadata.orchestration;
    let deadline = Instant::now() + seconds(o.healthy_deadline) + seconds(o.min_healthy_time);
    wait_healthy(ctx.prober(machine), machine, &m.metadata.health_checks, seconds(o.min_healthy_time), deadline)
        .await
        .is_ok()
}
