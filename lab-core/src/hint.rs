//! What to do about an error, as data: each frontend words it in its own
//! vocabulary.
//!
//! lab-core's error messages are written for the `lab` command (its flags
//! and subcommands); an error that advises something also says which
//! [`Hint`]s it gives ([`Hinted`]), so that a frontend with other words,
//! the C API and the Guile module over it, can [`reword`] the message into
//! its own: `--eval-timeout` becomes the request field `evalTimeout`,
//! `` `lab check` `` the function `lab_check`.

use std::fmt;

use serde::Serialize;

/// Something the reader of an error can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Hint {
    /// Give the evaluation more time.
    RaiseEvalTimeout,
    /// Look at every problem of the fleet.
    RunCheck,
    /// Look at the fleet's machines.
    ListMachines,
    /// Run without updating the flake's lock file first (only a local
    /// flake has one to update).
    SkipFlakeUpdate,
    /// Give a source that holds the machines' systems, not only their
    /// metadata.
    BuildableSource,
}

/// Whose words a hint is said in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// The `lab` command: flags and subcommands.
    Cli,
    /// The C API and the Guile module: request fields and function names.
    Api,
}

impl Hint {
    /// The words that name what to do, in `vocabulary`.
    pub fn term(self, vocabulary: Vocabulary) -> &'static str {
        use Vocabulary::{Api, Cli};
        match (self, vocabulary) {
            (Hint::RaiseEvalTimeout, Cli) => "--eval-timeout",
            (Hint::RaiseEvalTimeout, Api) => "evalTimeout",
            (Hint::RunCheck, Cli) => "`lab check`",
            (Hint::RunCheck, Api) => "lab_check",
            (Hint::ListMachines, Cli) => "`lab machines`",
            (Hint::ListMachines, Api) => "lab_machines",
            (Hint::SkipFlakeUpdate, Cli) => "--update",
            (Hint::SkipFlakeUpdate, Api) => "update: true",
            (Hint::BuildableSource, Cli) => "--flake, --file, --hosts-dir",
            (Hint::BuildableSource, Api) => "flake, file, hostsDir",
        }
    }
}

/// The CLI's words: what error messages are written with.
impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.term(Vocabulary::Cli))
    }
}

/// An error that says which [`Hint`]s its message gives.
pub trait Hinted {
    /// The hints in the message, each once (empty when it gives none).
    fn hints(&self) -> Vec<Hint>;
}

/// `message`, an error's text in the CLI's words, with each of `hints` in
/// `vocabulary`'s words instead.
pub fn reword(message: &str, hints: &[Hint], vocabulary: Vocabulary) -> String {
    hints.iter().fold(message.to_string(), |text, hint| text.replace(hint.term(Vocabulary::Cli), hint.term(vocabulary)))
}

impl Hinted for crate::eval::EvalError {
    fn hints(&self) -> Vec<Hint> {
        match self {
            crate::eval::EvalError::Timeout(_) => vec![Hint::RaiseEvalTimeout],
            _ => Vec::new(),
        }
    }
}

impl Hinted for crate::graph::SelectError {
    fn hints(&self) -> Vec<Hint> {
        match self {
            crate::graph::SelectError::NothingSelected { hint, .. }
                if hint.contains(Hint::ListMachines.term(Vocabulary::Cli)) =>
            {
                vec![Hint::ListMachines]
            }
            _ => Vec::new(),
        }
    }
}

impl Hinted for crate::graph::OrderError {
    fn hints(&self) -> Vec<Hint> {
        match self {
            crate::graph::OrderError::Blocked(_) | crate::graph::OrderError::Invalid(_) => vec![Hint::RunCheck],
            crate::graph::OrderError::Select(e) => e.hints(),
        }
    }
}

impl Hinted for crate::graph::FleetError {
    fn hints(&self) -> Vec<Hint> {
        let crate::graph::FleetError::Invalid { problems } = self;
        // The cycle summary among the problems sends the reader to `lab check`.
        let check = problems.iter().any(|p| p.message.contains(Hint::RunCheck.term(Vocabulary::Cli)));
        if check {
            vec![Hint::RunCheck]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_has_words_in_every_vocabulary_and_rewords_back() {
        for hint in
            [Hint::RaiseEvalTimeout, Hint::RunCheck, Hint::ListMachines, Hint::SkipFlakeUpdate, Hint::BuildableSource]
        {
            let cli = format!("no; see {hint}, or {hint} again");
            let api = reword(&cli, &[hint], Vocabulary::Api);
            assert!(!api.contains(hint.term(Vocabulary::Cli)), "{api}");
            assert_eq!(api.matches(hint.term(Vocabulary::Api)).count(), 2, "{api}");
            assert_eq!(reword(&cli, &[hint], Vocabulary::Cli), cli);
        }
        assert_eq!(
            reword("raise --eval-timeout; see `lab check`", &[Hint::RaiseEvalTimeout], Vocabulary::Api),
            "raise evalTimeout; see `lab check`"
        );
    }
}
