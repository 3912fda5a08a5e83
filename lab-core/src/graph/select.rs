//! `--on`: choosing part of the fleet.
//!
//! An expression is a comma-separated list of terms, each a machine name,
//! `@group`, `role:NAME` or `name:NAME`. Names, groups and roles may be
//! globs, matched by the `glob` crate: `*` matches any run of characters,
//! `?` one character, `[12]` / `[a-z]` / `[!x]` one character of a set
//! (`web-*`, `@dns*`, `dns[12]`). `name:NAME` is a machine's exact name,
//! never a glob and never a group or role, so a machine called `@x`,
//! `role:y` or `web*` can still be selected (`name:@x`). In any term a
//! backslash takes the next character literally: `\,` a comma inside a
//! name (`name:a\,b`), `\*` a star, `\\` a backslash. A machine is
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
    /// A name glob.
    Name(Glob),
    /// A group glob.
    Group(Glob),
    /// A role glob.
    Role(Glob),
    /// `name:NAME`: exactly this name.
    Exact(String),
}

/// A glob as written (for messages and suggestions) and as compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    text: String,
    pattern: glob::Pattern,
}

impl Glob {
    /// The glob of `chars`, each with whether a backslash made it literal.
    fn new(chars: &[(char, bool)]) -> Result<Glob, glob::PatternError> {
        let text: String = chars.iter().map(|&(c, _)| c).collect();
        let source: String = chars
            .iter()
            .map(|&(c, literal)| if literal { glob::Pattern::escape(&c.to_string()) } else { c.to_string() })
            .collect();
        Ok(Glob { text, pattern: glob::Pattern::new(&source)? })
    }

    fn matches(&self, text: &str) -> bool {
        // `*` matches any character, `/` and a leading `.` included: names
        // are not paths.
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        self.pattern.matches_with(text, options)
    }
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
    /// A glob cannot be read (e.g. an unclosed `[`).
    #[error("--on \"{}\": `{}` is not a valid glob ({message}); write `[` as `\\[` or `[[]`, or select the exact name with name:NAME", printable(expression), printable(term))]
    BadGlob {
        /// The whole expression.
        expression: String,
        /// The term.
        term: String,
        /// What is wrong with it.
        message: String,
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
        for (n, raw) in split_terms(expression).into_iter().enumerate() {
            let raw = trim(&raw);
            let text: String = raw.iter().map(|&(c, _)| c).collect();
            // A prefix counts only when written plainly (`\@x` is a name).
            let plain = |prefix: &str| {
                let len = prefix.chars().count();
                raw.len() >= len && raw[..len].iter().all(|&(_, lit)| !lit) && text.starts_with(prefix)
            };
            let glob = |rest: &[(char, bool)]| {
                Glob::new(rest).map_err(|e| SelectError::BadGlob {
                    expression: expression.to_string(),
                    term: text.clone(),
                    message: e.msg.to_string(),
                })
            };
            let (term, what) = if plain("name:") {
                (Term::Exact(raw[5..].iter().map(|&(c, _)| c).collect()), "the name after `name:`".to_string())
            } else if plain("@") {
                (Term::Group(glob(&raw[1..])?), "the group name after `@`".to_string())
            } else if plain("role:") {
                (Term::Role(glob(&raw[5..])?), "the role after `role:`".to_string())
            } else {
                (Term::Name(glob(&raw)?), format!("term {}", n + 1))
            };
            if term.text().is_empty() {
                return Err(empty(what));
            }
            terms.push(term);
        }
        Ok(Selector { expression: expression.to_string(), terms })
    }
}

/// The terms of `expression`: split at commas, a backslash taking the next
/// character literally (each character comes with whether it was escaped).
fn split_terms(expression: &str) -> Vec<Vec<(char, bool)>> {
    let mut terms = Vec::new();
    let mut term = Vec::new();
    let mut chars = expression.chars();
    while let Some(c) = chars.next() {
        match c {
            // A trailing backslash stands for itself.
            '\\' => term.push((chars.next().unwrap_or('\\'), true)),
            ',' => terms.push(std::mem::take(&mut term)),
            c => term.push((c, false)),
        }
    }
    terms.push(term);
    terms
}

/// `term` without unescaped white space at either end.
fn trim(term: &[(char, bool)]) -> Vec<(char, bool)> {
    let blank = |&(c, lit): &(char, bool)| c.is_whitespace() && !lit;
    let start = term.iter().position(|x| !blank(x)).unwrap_or(term.len());
    let end = term.iter().rposition(|x| !blank(x)).map_or(start, |e| e + 1);
    term[start..end.max(start)].to_vec()
}

impl Selector {
    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn term_text(term: &Term) -> String {
        match term {
            Term::Name(g) => g.text.clone(),
            Term::Group(g) => format!("@{}", g.text),
            Term::Role(g) => format!("role:{}", g.text),
            Term::Exact(s) => format!("name:{s}"),
        }
    }
}

impl Term {
    /// What the term names, without its prefix.
    fn text(&self) -> &str {
        match self {
            Term::Name(g) | Term::Group(g) | Term::Role(g) => &g.text,
            Term::Exact(s) => s,
        }
    }

    fn matches(&self, fleet: &Fleet, i: usize) -> bool {
        let m = &fleet.machines[i];
        match self {
            Term::Name(g) => g.matches(&m.name),
            Term::Exact(name) => *name == m.name,
            Term::Role(g) => g.matches(&m.metadata.role),
            Term::Group(g) => fleet.groups[i].iter().any(|&n| g.matches(&fleet.group_names[n as usize])),
        }
    }

    /// Names this kind of term could have meant, for the suggestion.
    fn universe<'a>(&self, fleet: &'a Fleet) -> Vec<&'a str> {
        let mut all: Vec<&str> = match self {
            Term::Name(_) | Term::Exact(_) => fleet.machines.iter().map(|m| m.name.as_str()).collect(),
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
        let text = term.text();
        let universe = term.universe(self);
        let close = nearest(text, universe.iter().copied());
        let prefix = match term {
            Term::Name(_) => "",
            Term::Exact(_) => "name:",
            Term::Group(_) => "@",
            Term::Role(_) => "role:",
        };
        let close: Vec<String> = close.iter().map(|c| format!("{prefix}{c}")).collect();
        let hint = if !close.is_empty() {
            did_you_mean(&close)
        } else {
            let kind = match term {
                Term::Name(_) | Term::Exact(_) => "machines",
                Term::Group(_) => "groups",
                Term::Role(_) => "roles",
            };
            if universe.is_empty() {
                format!(": the fleet has no {kind}")
            } else if universe.len() <= 12 {
                format!(" (the fleet's {kind}: {})", universe.join(", "))
            } else {
                format!("; the fleet has {} {kind}, see {}", universe.len(), crate::hint::Hint::ListMachines)
            }
        };
        SelectError::NothingSelected { expression: selector.expression.clone(), term: Selector::term_text(term), hint }
    }
}
