//! The critical path of a run: from the step that ended last, back through
//! the step each one waited for, to one that waited for nothing.
//!
//! A step waited for a step that had ended before it started (the
//! journal's order says which had: it is written as things happen). Which
//! one: the last to end, because a step starts once the last thing it
//! needs is done. The candidates depend on what the step can wait for:
//! a reboot, the wait for boot and the health checks follow their own
//! machine's step before them and nothing else; every other step may wait
//! for another machine too (a wave for the one before it, an activation
//! for the last copy, a commit for its wave's health checks, a copy for a
//! free copy slot). Records written within [`SAME_MOMENT_MS`] of the last
//! candidate are one moment (lab writes a batch of them one after the
//! other, e.g. all builds finishing together): among those, the step's own
//! machine is the one it waited for.

use super::Span;
use crate::plan::Action;

/// Records this close together (ms) were written for one event.
pub(crate) const SAME_MOMENT_MS: u64 = 50;

/// The indexes of the spans on the critical path, first to last.
pub(crate) fn path(spans: &[Span]) -> Vec<usize> {
    // A step still running ends after every ended one.
    let end_key = |s: &Span| s.end.map_or((u64::MAX, u64::MAX), |(seq, ms)| (ms, seq));
    let Some(last) = (0..spans.len()).max_by_key(|&i| end_key(&spans[i])) else { return Vec::new() };
    let mut path = vec![last];
    // Each step back starts earlier in the journal, so this ends; the
    // bound only makes that plain.
    for _ in 0..spans.len() {
        let Some(before) = waited_for(spans, *path.last().unwrap_or(&last)) else { break };
        path.push(before);
    }
    path.reverse();
    path
}

/// The span that span `i` waited for, if any. (A rollback starts at the
/// record that ended the step before it, hence `<=`.)
fn waited_for(spans: &[Span], i: usize) -> Option<usize> {
    let s = &spans[i];
    let own_only = s.rollback || matches!(s.action, Some(Action::Reboot | Action::WaitForBoot | Action::HealthChecks));
    let candidates: Vec<(usize, (u64, u64))> = spans
        .iter()
        .enumerate()
        .filter(|(j, c)| *j != i && (!own_only || c.machine == s.machine))
        .filter_map(|(j, c)| c.end.filter(|(seq, _)| *seq <= s.start.0).map(|end| (j, end)))
        .collect();
    let latest = candidates.iter().map(|(_, (_, ms))| *ms).max()?;
    candidates
        .into_iter()
        .filter(|(_, (_, ms))| *ms + SAME_MOMENT_MS >= latest)
        .max_by_key(|(j, (seq, _))| (spans[*j].machine == s.machine, *seq))
        .map(|(j, _)| j)
}
