//! Requests: typed `#[derive(Deserialize)]` parts, each with
//! `deny_unknown_fields`, put together per call.
//!
//! Every fleet request is the fleet source ([`SourceSpec`]), how to
//! evaluate ([`EvalFields`]) and the call's own parts (e.g. [`Select`],
//! [`Limits`]). Each part is a plain struct; its field names come from
//! serde itself ([`field_names`]), so no list of fields is written twice. A
//! field no part knows is an error naming it and the fields that are known,
//! so a misspelt option never goes unnoticed.
//!
//! The field types below give each wrong value a message naming the field
//! and what it must be (`"maxParallel" must be a whole number of at least
//! 1`), as C and Guile callers see it.

use std::ffi::c_char;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::boundary::{request, FfiError};
use lab_core::eval::{self, SourceSpec};

/// A request of a call that reads a fleet: source, evaluation options, and
/// the call's own parts `C` (a tuple of part structs).
pub(crate) struct Request<C> {
    /// Where the fleet comes from.
    pub source: SourceSpec,
    /// How to evaluate it.
    pub eval: EvalFields,
    /// The call's own fields.
    pub call: C,
}

impl<C: Parts> Request<C> {
    /// Reads the request behind `ptr`: NULL, bad UTF-8, bad JSON, a
    /// non-object, a wrong value and an unknown field are errors.
    pub fn parse(ptr: *const c_char) -> Result<Self, FfiError> {
        let Value::Object(mut object) = request::<Value>(ptr)? else {
            return Err(FfiError::invalid("the request must be a JSON object"));
        };
        let mut known = field_names::<SourceSpec>().to_vec();
        known.extend(field_names::<EvalFields>());
        known.extend(C::names());
        if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
            let expected = known.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
            return Err(FfiError::invalid(format!(
                "the request is not valid: unknown field `{unknown}`, expected one of {expected}"
            )));
        }
        Ok(Request { source: take(&mut object)?, eval: take(&mut object)?, call: C::take(&mut object)? })
    }
}

/// The parts of a call, as a tuple of part structs.
pub(crate) trait Parts: Sized {
    /// Every field of every part.
    fn names() -> Vec<&'static str>;
    /// Each part, read from its own fields of `object`.
    fn take(object: &mut Map<String, Value>) -> Result<Self, FfiError>;
}

macro_rules! parts {
    ($($part:ident),+) => {
        impl<$($part: DeserializeOwned),+> Parts for ($($part,)+) {
            fn names() -> Vec<&'static str> {
                let mut names = Vec::new();
                $(names.extend(field_names::<$part>());)+
                names
            }
            fn take(object: &mut Map<String, Value>) -> Result<Self, FfiError> {
                Ok(($(take::<$part>(object)?,)+))
            }
        }
    };
}
impl Parts for () {
    fn names() -> Vec<&'static str> {
        Vec::new()
    }
    fn take(_: &mut Map<String, Value>) -> Result<Self, FfiError> {
        Ok(())
    }
}
parts!(A);
parts!(A, B);
parts!(A, B, C);
parts!(A, B, C, D);
parts!(A, B, C, D, E);

/// Reads part `T` from its fields of `object`, which it removes.
fn take<T: DeserializeOwned>(object: &mut Map<String, Value>) -> Result<T, FfiError> {
    let own: Map<String, Value> = field_names::<T>().iter().filter_map(|f| object.remove_entry(*f)).collect();
    serde_path_to_error::deserialize(Value::Object(own)).map_err(|e| {
        let field = e.path().to_string();
        let message = e.into_inner().to_string();
        FfiError::invalid(if let Some(what) = message.strip_prefix(MUST) {
            format!("\"{field}\" {what}")
        } else if let Some(what) = message.strip_prefix(NEEDS) {
            format!("the request needs \"{field}\": {what}")
        } else {
            format!("the request is not valid: {message}")
        })
    })
}

/// The field names of a struct, in order, as serde names them: what its
/// derived `Deserialize` passes to `deserialize_struct`.
pub(crate) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Names<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Names<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only structs have field names"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Names(&mut names));
    names
}

/// Marks a message as "FIELD must be …" (see [`take`]).
const MUST: &str = "\u{1}";
/// Marks a message as "the request needs FIELD: …".
const NEEDS: &str = "\u{2}";

fn must<E: de::Error>(what: impl std::fmt::Display) -> E {
    E::custom(format!("{MUST}{what}"))
}

/// Every call's evaluation options, as the CLI's `--refresh`,
/// `--eval-timeout`, `--eval-jobs`, `--cache-impure` and
/// `--eval-worker-memory`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EvalFields {
    /// Ignore a cached result.
    #[serde(default)]
    refresh: Flag,
    /// Seconds before nix is stopped (default 600, as the CLI's).
    #[serde(default)]
    eval_timeout: Seconds,
    /// nix processes at once (0: automatic).
    #[serde(default)]
    eval_jobs: Jobs,
    /// Cache a file or hosts-directory evaluation.
    #[serde(default)]
    cache_impure: Flag,
    /// Megabytes past which a nix worker is replaced (default 2048).
    #[serde(default)]
    eval_worker_memory: Megabytes,
}

/// The evaluation timeout when a request gives none: the CLI's default.
const DEFAULT_EVAL_TIMEOUT: Duration = Duration::from_secs(600);

impl EvalFields {
    /// How to evaluate: these options and the XDG cache, as the CLI.
    pub fn options(&self) -> eval::EvalOptions {
        eval::EvalOptions {
            jobs: self.eval_jobs.0,
            timeout: Some(self.eval_timeout.0.unwrap_or(DEFAULT_EVAL_TIMEOUT)),
            cache_dir: eval::default_cache_dir(),
            refresh: self.refresh.0,
            cache_impure: self.cache_impure.0,
            worker_memory: self.eval_worker_memory.0.map(|mb| mb << 20),
            ..eval::EvalOptions::default()
        }
    }
}

/// `on`, `withDependencies`, `withDependents`: which machines.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Select {
    /// The `--on` expression.
    #[serde(default)]
    pub on: Text,
    /// Add what the selection needs.
    #[serde(default)]
    pub with_dependencies: Flag,
    /// Add what needs the selection.
    #[serde(default)]
    pub with_dependents: Flag,
}

/// `maxParallel`, `maxUnavailablePerGroup`: the limits of a plan or run.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Limits {
    /// Machines at once.
    #[serde(default)]
    pub max_parallel: Count,
    /// Machines of one group down at once.
    #[serde(default)]
    pub max_unavailable_per_group: Count,
}

/// `machine`: the one machine a call is about.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OneMachine {
    /// Its name.
    #[serde(default)]
    pub machine: Needed,
}

/// `sshOptions`, `sshConfig`: how to reach machines.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Ssh {
    /// Extra `-o` options, "Key=Value".
    #[serde(default)]
    pub ssh_options: SshOptionList,
    /// An ssh config file instead of ~/.ssh/config.
    #[serde(default)]
    pub ssh_config: Text,
}

impl Ssh {
    /// The ssh options these fields give (before the fleet's own).
    pub fn options(&self) -> lab_core::exec::SshOptions {
        lab_core::exec::SshOptions {
            options: self.ssh_options.0.clone(),
            config_file: self.ssh_config.0.clone().map(PathBuf::from),
            ..Default::default()
        }
    }
}

/// Defines a field type read from any JSON value by `$read`, which returns
/// `None` for a wrong value; `$what` says what the field must be.
macro_rules! field {
    ($(#[$doc:meta])* $name:ident($ty:ty), $read:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone)]
        pub(crate) struct $name(pub $ty);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                let read: fn(&Value) -> Option<$ty> = $read;
                let what: fn(&Value) -> String = $what;
                read(&value).map($name).ok_or_else(|| must(what(&value)))
            }
        }
    };
}

field!(
    /// `true` or `false`; absent or null: false.
    Flag(bool),
    |v| match v {
        Value::Null => Some(false),
        Value::Bool(b) => Some(*b),
        _ => None,
    },
    |_| "must be true or false".into()
);

field!(
    /// A string; absent or null: none.
    Text(Option<String>),
    |v| match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        _ => None,
    },
    |_| "must be a string".into()
);

field!(
    /// A whole number of at least 1; absent or null: none.
    Count(Option<NonZeroUsize>),
    |v| match v {
        Value::Null => Some(None),
        v => v.as_u64().and_then(|n| usize::try_from(n).ok()).and_then(NonZeroUsize::new).map(Some),
    },
    |_| "must be a whole number of at least 1".into()
);

field!(
    /// Seconds, a number; absent or null: none.
    Seconds(Option<Duration>),
    |v| match v {
        Value::Null => Some(None),
        v => v.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok()).map(Some),
    },
    |v| format!("is {v}; give a number of seconds, e.g. 600")
);

field!(
    /// nix processes at once; absent, null or 0: one per core.
    Jobs(usize),
    |v| match v {
        Value::Null => Some(0),
        v => v.as_u64().and_then(|n| usize::try_from(n).ok()),
    },
    |v| format!("is {v}; give a whole number (0: one per core)")
);

field!(
    /// Megabytes, a whole number of at least 1; absent or null: the default.
    Megabytes(Option<u64>),
    |v| match v {
        Value::Null => Some(None),
        v => v.as_u64().filter(|mb| *mb > 0 && *mb < 1 << 40).map(Some),
    },
    |v| format!("is {v}; give megabytes, e.g. 2048")
);

field!(
    /// ssh `-o` options; absent or null: none.
    SshOptionList(Vec<String>),
    |v| match v {
        Value::Null => Some(Vec::new()),
        v => serde_json::from_value(v.clone()).ok(),
    },
    |_| "must be a list of \"Key=Value\" strings".into()
);

field!(
    /// A command as a list of strings; absent or null: none.
    Argv(Option<Vec<String>>),
    |v| match v {
        Value::Null => Some(None),
        v => serde_json::from_value(v.clone()).ok().map(Some),
    },
    |_| "must be a list of strings, e.g. [\"sudo\", \"-H\", \"--\"]".into()
);

/// A string the call cannot do without; a wrong or missing value is "the
/// request needs FIELD: a string".
#[derive(Debug, Default, Clone)]
pub(crate) struct Needed(Option<String>);

impl<'de> Deserialize<'de> for Needed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(Needed(Some(s))),
            _ => Err(de::Error::custom(format!("{NEEDS}a string"))),
        }
    }
}

impl Needed {
    /// The string, or the error naming `field` when it was not given.
    pub fn get(&self, field: &str) -> Result<String, FfiError> {
        self.0.clone().ok_or_else(|| FfiError::invalid(format!("the request needs \"{field}\": a string")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_serde_s() {
        assert_eq!(field_names::<SourceSpec>(), ["flake", "file", "hostsDir", "nixpkgs", "jsonFile"]);
        assert_eq!(field_names::<Select>(), ["on", "withDependencies", "withDependents"]);
        assert_eq!(
            field_names::<EvalFields>(),
            ["refresh", "evalTimeout", "evalJobs", "cacheImpure", "evalWorkerMemory"]
        );
    }
}
