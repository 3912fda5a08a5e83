//! The context every step of a run works in: the prepared run, what it
//! acts through, what the interrupted run's journal says, and the run's
//! [`Recorder`] (which it derefs to, so a step reads `ctx.start(…)`).

use std::ops::Deref;

use super::prepare::Prepared;
use super::recorder::Recorder;
use super::resume::Prior;
use super::runtime::Runtime;
use crate::exec::Executor;
use crate::health::Prober;
use crate::metadata::Machine;
use crate::remote::Remote;

/// One run while it executes.
pub(super) struct Ctx<'a> {
    /// The run: fleet, plans, systems.
    pub prepared: &'a Prepared,
    /// Executors, probers, builder, events.
    pub rt: &'a Runtime,
    /// What an interrupted run's journal says (empty for a new run).
    pub prior: Prior,
    /// Journal, events, outcomes, hooks.
    pub recorder: Recorder<'a>,
}

impl<'a> Deref for Ctx<'a> {
    type Target = Recorder<'a>;

    fn deref(&self) -> &Recorder<'a> {
        &self.recorder
    }
}

impl<'a> Ctx<'a> {
    /// The machine `name` of the run's fleet.
    pub fn machine(&self, name: &str) -> &'a Machine {
        // Every name in a plan comes from the prepared fleet.
        self.prepared.fleet.machine(name).expect("plan machines are fleet machines")
    }

    /// The executor of `name`.
    pub fn exec(&self, name: &str) -> &dyn Executor {
        self.rt.executors[name].as_ref()
    }

    /// The remote commands of `name`.
    pub fn remote(&self, name: &str) -> Remote<'_> {
        Remote {
            exec: self.exec(name),
            user: &self.machine(name).metadata.target_user,
            escalation: &self.rt.escalation,
        }
    }

    /// The health prober of `name`.
    pub fn prober(&self, name: &str) -> &dyn Prober {
        self.rt.probers[name].as_ref()
    }
}
