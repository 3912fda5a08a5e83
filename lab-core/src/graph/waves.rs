//! Ordering the fleet: a topological order and waves under limits.
//!
//! Both are list scheduling over the machines that are ready (all their
//! dependencies done), most urgent first: lower rebootOrder, then name
//! (node index). `order` takes one ready machine at a time; `waves` fills
//! each wave from the ready machines in that same priority, skipping the
//! ones a limit keeps out, and releases the dependents of a wave only when
//! the wave is done. With `maxParallel` 1 every wave is one machine and the
//! waves are exactly `order()`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroUsize;

use petgraph::graph::NodeIndex;
use petgraph::Direction;
use serde::{Deserialize, Serialize};

use super::Fleet;
use crate::metadata::{Criticality, DeployStrategy, Machine};
use crate::settings::FleetSettings;

/// How much of the fleet may be down at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Machines per wave (default 1: strictly one after the other).
    pub max_parallel: NonZeroUsize,
    /// Machines of one group per wave, fleet-wide; `None` is no limit
    /// beyond `max_parallel` and the criticality rules.
    pub max_unavailable_per_group: Option<NonZeroUsize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_parallel: NonZeroUsize::MIN, max_unavailable_per_group: None }
    }
}

impl Limits {
    /// Limits of `max_parallel` machines per wave, no group limit.
    pub fn parallel(max_parallel: NonZeroUsize) -> Self {
        Limits { max_parallel, ..Limits::default() }
    }

    /// The limits a command asks for (`--max-parallel`, the C API's
    /// `maxParallel`, ...), the fleet's settings (`lab.maxParallel`,
    /// `lab.maxUnavailablePerGroup`) filling in what it leaves out, else
    /// one machine at a time and no group limit. Every frontend resolves
    /// its limits here.
    pub fn resolve(
        max_parallel: Option<NonZeroUsize>,
        max_unavailable_per_group: Option<NonZeroUsize>,
        settings: &FleetSettings,
    ) -> Limits {
        Limits {
            max_parallel: max_parallel.or(settings.max_parallel).unwrap_or(NonZeroUsize::MIN),
            max_unavailable_per_group: max_unavailable_per_group.or(settings.max_unavailable_per_group),
        }
    }
}

impl Fleet {
    /// Every machine, dependencies first; among machines ready at the same
    /// time, lower rebootOrder first, then name.
    pub fn order(&self) -> Vec<&Machine> {
        self.order_indexes().into_iter().map(|i| &self.machines[i]).collect()
    }

    /// The machines cut into waves that run one after the other: a machine
    /// is in a later wave than each of its dependencies; a wave holds at most
    /// `max_parallel` machines; a critical machine is alone in its wave; a
    /// high machine shares its wave with no other machine of any of its
    /// groups; no wave holds more than `max_unavailable_per_group` machines
    /// of one group. Within a wave, machines are in priority order.
    pub fn waves(&self, limits: &Limits) -> Vec<Vec<&Machine>> {
        self.machines_of(self.wave_indexes(limits, &|_| true))
    }

    /// The waves of a deploy: as [`waves`](Self::waves), except that
    /// machines deployed with `recreate` (whose downtime does not matter)
    /// do not count towards `max_parallel`, so all those ready together
    /// share a wave and are activated at once. The criticality and group
    /// rules hold for them as for any machine.
    pub fn deploy_waves(&self, limits: &Limits) -> Vec<Vec<&Machine>> {
        let counts = |i: usize| self.machines[i].metadata.orchestration.deploy_strategy != DeployStrategy::Recreate;
        self.machines_of(self.wave_indexes(limits, &counts))
    }

    fn machines_of(&self, waves: Vec<Vec<usize>>) -> Vec<Vec<&Machine>> {
        waves.into_iter().map(|w| w.into_iter().map(|i| &self.machines[i]).collect()).collect()
    }

    fn priority(&self, i: usize) -> (i64, usize) {
        (self.machines[i].metadata.reboot_order, i)
    }

    /// Number of dependencies each machine still waits for.
    fn pending(&self) -> Vec<usize> {
        (0..self.machines.len())
            .map(|i| self.graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing).count())
            .collect()
    }

    /// Calls `ready` with each dependent of `i` whose last dependency was `i`.
    fn release(&self, i: usize, pending: &mut [usize], mut ready: impl FnMut(usize)) {
        for d in self.graph.neighbors_directed(NodeIndex::new(i), Direction::Incoming) {
            let d = d.index();
            pending[d] -= 1;
            if pending[d] == 0 {
                ready(d);
            }
        }
    }

    pub(super) fn order_indexes(&self) -> Vec<usize> {
        let mut pending = self.pending();
        let mut ready: BinaryHeap<Reverse<(i64, usize)>> =
            (0..pending.len()).filter(|&i| pending[i] == 0).map(|i| Reverse(self.priority(i))).collect();
        let mut out = Vec::with_capacity(pending.len());
        while let Some(Reverse((_, i))) = ready.pop() {
            out.push(i);
            self.release(i, &mut pending, |d| ready.push(Reverse(self.priority(d))));
        }
        out
    }

    /// The waves, as indexes; only machines for which `counts` holds count
    /// towards `max_parallel`.
    pub(super) fn wave_indexes(&self, limits: &Limits, counts: &dyn Fn(usize) -> bool) -> Vec<Vec<usize>> {
        let mut pending = self.pending();
        // Two queues, so that a full wave still takes the free machines
        // without scanning every counted one that waits.
        let mut ready = [BinaryHeap::new(), BinaryHeap::new()];
        let queue = |i: usize| usize::from(!counts(i));
        for i in (0..pending.len()).filter(|&i| pending[i] == 0) {
            ready[queue(i)].push(Reverse(self.priority(i)));
        }
        let mut wave = WaveState {
            members: Vec::new(),
            counted: 0,
            in_group: vec![0; self.group_names.len()],
            held_by_high: vec![false; self.group_names.len()],
            critical: false,
        };
        let mut skipped = Vec::new();
        let mut waves = Vec::new();
        while ready.iter().any(|q| !q.is_empty()) {
            // Most urgent first, across both queues; the ones a limit keeps
            // out wait for the next wave.
            while !wave.critical {
                let full = wave.counted == limits.max_parallel.get();
                let next = match (ready[0].peek(), ready[1].peek()) {
                    (Some(a), Some(b)) if !full => usize::from(b > a),
                    (Some(_), None) if !full => 0,
                    (_, Some(_)) => 1,
                    _ => break,
                };
                let Some(Reverse(key)) = ready[next].pop() else { break };
                if wave.admits(self, key.1, limits) {
                    wave.add(self, key.1, next == 0);
                } else {
                    skipped.push((next, Reverse(key)));
                }
            }
            for (q, key) in skipped.drain(..) {
                ready[q].push(key);
            }
            for &i in &wave.members {
                self.release(i, &mut pending, |d| ready[queue(d)].push(Reverse(self.priority(d))));
            }
            waves.push(wave.take(self));
        }
        waves
    }
}

/// The wave being filled, with per-group counts so each admission check
/// costs only the candidate's groups.
struct WaveState {
    members: Vec<usize>,
    /// Members that count towards `max_parallel`.
    counted: usize,
    /// Members per group.
    in_group: Vec<usize>,
    /// Groups a high member holds: no other machine of them may join.
    held_by_high: Vec<bool>,
    /// A critical member is alone.
    critical: bool,
}

impl WaveState {
    fn admits(&self, fleet: &Fleet, i: usize, limits: &Limits) -> bool {
        let groups = &fleet.groups[i];
        let per_group = limits.max_unavailable_per_group.map_or(usize::MAX, NonZeroUsize::get);
        match fleet.machines[i].metadata.orchestration.criticality_level {
            Criticality::Critical => self.members.is_empty(),
            Criticality::High => groups.iter().all(|&g| self.in_group[g as usize] == 0),
            Criticality::Medium | Criticality::Low => {
                groups.iter().all(|&g| !self.held_by_high[g as usize] && self.in_group[g as usize] < per_group)
            }
        }
    }

    fn add(&mut self, fleet: &Fleet, i: usize, counted: bool) {
        self.counted += usize::from(counted);
        let criticality = fleet.machines[i].metadata.orchestration.criticality_level;
        for &g in &fleet.groups[i] {
            self.in_group[g as usize] += 1;
            self.held_by_high[g as usize] |= criticality == Criticality::High;
        }
        self.critical |= criticality == Criticality::Critical;
        self.members.push(i);
    }

    /// The finished wave; resets the counts it touched.
    fn take(&mut self, fleet: &Fleet) -> Vec<usize> {
        for &i in &self.members {
            for &g in &fleet.groups[i] {
                self.in_group[g as usize] = 0;
                self.held_by_high[g as usize] = false;
            }
        }
        self.critical = false;
        self.counted = 0;
        std::mem::take(&mut self.members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_else_the_fleet_setting_else_one() {
        let n = |v| NonZeroUsize::new(v);
        let none = FleetSettings::default();
        let fleet = FleetSettings { max_parallel: n(3), max_unavailable_per_group: n(2), ..FleetSettings::default() };
        assert_eq!(Limits::resolve(None, None, &none), Limits::default());
        assert_eq!(
            Limits::resolve(None, None, &fleet),
            Limits { max_parallel: n(3).unwrap(), max_unavailable_per_group: n(2) }
        );
        assert_eq!(
            Limits::resolve(n(5), n(1), &fleet),
            Limits { max_parallel: n(5).unwrap(), max_unavailable_per_group: n(1) }
        );
        assert_eq!(Limits::resolve(n(4), None, &none), Limits::parallel(n(4).unwrap()));
    }
}
