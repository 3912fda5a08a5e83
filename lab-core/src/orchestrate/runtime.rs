//! What a run acts through, handed in by the frontend.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::events::Events;
use super::window_gate::RebootWindow;
use crate::build::Builder;
use crate::cancel::CancelToken;
use crate::exec::Executor;
use crate::health::Prober;
use crate::notify::NotifyConfig;
use crate::reach::Reached;
use crate::remote::Escalation;

/// Each machine's executor and prober, by name, as [`Runtime`] holds them.
type ByName = (BTreeMap<String, Arc<dyn Executor>>, BTreeMap<String, Arc<dyn ProberDebug>>);

/// Executors and probers by machine name, as [`Runtime`] holds them, from
/// the machines [`crate::reach`] reached.
pub fn by_name(reached: Vec<Reached>) -> ByName {
    let mut executors = BTreeMap::new();
    let mut probers: BTreeMap<String, Arc<dyn ProberDebug>> = BTreeMap::new();
    for Reached { machine, executor, prober } in reached {
        probers.insert(machine.name.clone(), prober);
        executors.insert(machine.name, executor);
    }
    (executors, probers)
}

/// What a run acts through: one executor and one prober per machine, the
/// builder, and where events go.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Each machine's executor, by name.
    pub executors: BTreeMap<String, Arc<dyn Executor>>,
    /// Each machine's health prober, by name.
    pub probers: BTreeMap<String, Arc<dyn ProberDebug>>,
    /// Builds the systems of a deploy.
    pub builder: Option<Arc<dyn Builder>>,
    /// How privileged commands run for non-root target users.
    pub escalation: Escalation,
    /// Where events go.
    pub events: Events,
    /// Stop request.
    pub cancel: CancelToken,
    /// Show, do not wait: delays and health waits pass at once (the
    /// executors are dry-run executors).
    pub dry_run: bool,
    /// Hooks told about a failed run and every rollback (the fleet's
    /// `lab.notify`); empty: none.
    pub notify: NotifyConfig,
    /// Reboots only inside this window (the fleet's `lab.rebootWindow`,
    /// unless `--ignore-window`); `None`: any time.
    pub window: Option<RebootWindow>,
}

/// A [`Prober`] that can be printed (for [`Runtime`]'s Debug).
pub trait ProberDebug: Prober + std::fmt::Debug {}
impl<T: Prober + std::fmt::Debug> ProberDebug for T {}
