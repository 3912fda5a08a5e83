//! `--on`: choosing part of the fleet.
//!
//! An expression is a comma-separated list of terms, each a machine name,
//! `@group` or `role:NAME`; any of them may be a glob where `*` matches any
//! run of characters and `?` one character (`web-*`, `@dns*`). A machine is
//! selected when any term matches it; a term that matches nothing is an
//! error, so a typo never turns a run into a silent no-op.

use std::collections::VecDeque;
use std::str::FromStr;

use petgraph::graph::NodeIndex;
use petgraph::Direction;

use super::Fleet;
use crate::printable::printable;
use crate::suggest::{did_you_mean, nearest};

/// A parsed `--on` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    expression: String,
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Name(String),
    Group(String),
    Role(String),
}

/// What to add to the machines an expression selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expand {
    /// Add everything the selected machines need, transitively.
    pub dependencies: bool,
    /// Add everything that needs the selected machines, transitively.
    pub dependents: bool,
}

/// Why `--on` selects nothing or cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// The expression, or one of its comma-separated terms, is empty.
    #[error(
        "--on \"{}\": {what} is empty; give machine names, @group or role:NAME, separated by commas",
        printable(expression)
    )]
    Empty {
        /// The whole expression.
        expression: String,
        /// Which part is empty, e.g. "term 2" or "the group in `@`".
        what: String,
    },
    /// A term matches no machine.
    #[error("--on \"{}\": `{}` selects no machine{}", printable(expression), printable(term), printable(hint))]
    NothingSelected {
        /// The whole expression.
        expression: String,
        /// The term that matched nothing.
        term: String,
        /// Closest names, as " (did you mean ...?)", or a pointer to where to look.
        hint: String,
    },
}

impl FromStr for Selector {
    type Err = SelectError;

    fn from_str(expression: &str) -> Result<Self, SelectError> {
        let empty = |what: String| SelectError::Empty { expression: expression.to_string(), what };
        if expression.trim().is_empty() {
            return Err(empty("the expression".into()));
        }
        let mut terms = Vec::new();
        for (n, raw) in expression.split(',').enumerate() {
            let raw = raw.trim();
            let term = if let Some(group) = raw.strip_prefix('@') {
                Term::Group(group.to_string())
            } else if let Some(role) = raw.strip_prefix("role:") {
                Term::Role(role.to_string())
            } else {
                Term::Name(raw.to_string())
            };
            match &term {
                Term::Name(s) if s.is_empty() => return Err(empty(format!("term {}", n + 1))),
                Term::Group(s) if s.is_empty() => return Err(empty("the group name after `@`".into())),
                Term::Role(s) if s.is_empty() => return Err(empty("the role after `role:`".into())),
                _ => terms.push(term),
            }
        }
        Ok(Selector { expression: expression.to_string(), terms })
    }
}

impl Selector {
    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn term_text(term: &Term) -> String {
        match term {
            Term::Name(s) => s.clone(),
            Term::Group(s) => format!("@{s}"),
            Term::Role(s) => format!("role:{s}"),
        }
    }
}

impl Term {
    fn matches(&self, fleet: &Fleet, i: usize) -> bool {
        let m = &fleet.machines[i];
        match self {
            Term::Name(p) => glob_match(p, &m.name),
            Term::Role(p) => glob_match(p, &m.metadata.role),
            Term::Group(p) => fleet.groups[i].iter().any(|&g| glob_match(p, &fleet.group_names[g as usize])),
        }
    }

    /// Names this kind of term could have meant, for the suggestion.
    fn universe<'a>(&self, fleet: &'a Fleet) -> Vec<&'a str> {
        let mut all: Vec<&str> = match self {
            Term::Name(_) => fleet.machines.iter().map(|m| m.name.as_str()).collect(),
            Term::Group(_) => fleet.group_names.iter().map(String::as_str).collect(),
            Term::Role(_) => fleet.machines.iter().map(|m| m.metadata.role.as_str()).collect(),
        };
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Fleet {
    /// The part of the fleet `selector` picks, grown by `expand`, ordered as
    /// the whole fleet orders it: a picked machine depends on every picked
    /// machine it reaches, also through machines left out (those are left
    /// alone, but the order they impose still holds). Dependencies and
    /// dependents are each followed from the selected machines, so
    /// `--with-dependencies --with-dependents` does not pull in the
    /// dependents of a dependency.
    pub fn select(&self, selector: &Selector, expand: Expand) -> Result<Fleet, SelectError> {
        let n = self.machines.len();
        let mut picked = vec![false; n];
        for term in &selector.terms {
            let mut any = false;
            for (i, p) in picked.iter_mut().enumerate() {
                if term.matches(self, i) {
                    *p = true;
                    any = true;
                }
            }
            if !any {
                return Err(self.nothing_selected(selector, term));
            }
        }
        let mut keep = picked.clone();
        if expand.dependencies {
            self.reach(&picked, Direction::Outgoing, &mut keep);
        }
        if expand.dependents {
            self.reach(&picked, Direction::Incoming, &mut keep);
        }
        Ok(self.subset(&keep))
    }

    /// Marks in `keep` everything reachable from `from` along `direction`.
    fn reach(&self, from: &[bool], direction: Direction, keep: &mut [bool]) {
        let mut seen = from.to_vec();
        let mut queue: VecDeque<usize> = (0..from.len()).filter(|&i| from[i]).collect();
        while let Some(u) = queue.pop_front() {
            keep[u] = true;
            for v in self.graph.neighbors_directed(NodeIndex::new(u), direction) {
                if !seen[v.index()] {
                    seen[v.index()] = true;
                    queue.push_back(v.index());
                }
            }
        }
    }

    fn nothing_selected(&self, selector: &Selector, term: &Term) -> SelectError {
        let text = match term {
            Term::Name(s) | Term::Group(s) | Term::Role(s) => s,
        };
        let universe = term.universe(self);
        let close = nearest(text, universe.iter().copied());
        let prefix = match term {
            Term::Name(_) => "",
            Term::Group(_) => "@",
            Term::Role(_) => "role:",
        };
        let close: Vec<String> = close.iter().map(|c| format!("{prefix}{c}")).collect();
        let hint = if !close.is_empty() {
            did_you_mean(&close)
        } else {
            let kind = match term {
                Term::Name(_) => "machines",
                Term::Group(_) => "groups",
                Term::Role(_) => "roles",
            };
            if universe.is_empty() {
                format!(": the fleet has no {kind}")
            } else if universe.len() <= 12 {
                format!(" (the fleet's {kind}: {})", universe.join(", "))
            } else {
                format!("; the fleet has {} {kind}, see `lab machines`", universe.len())
            }
        };
        SelectError::NothingSelected { expression: selector.expression.clone(), term: Selector::term_text(term), hint }
    }
}

/// True when `text` matches `pattern`, where `*` matches any run of
/// characters (also none) and `?` exactly one; everything else is literal.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and which text position it is trying to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more character and retry.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
