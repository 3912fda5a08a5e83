//! Evaluating a Nix expression given by a caller (the original
//! `evaluate-nix-expr`), safely: the expression and its arguments go to
//! nix as argv, never through a shell, arguments as data (`--argstr`), under
//! a timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::nix::{Failure, Nix};
use super::{EvalError, Stopped};

/// Evaluates `expr` strictly to JSON. When `args` is not empty, `expr` must
/// be a function taking them (`{ name, ... }: …`); each arrives as a string.
pub fn evaluate_expression(
    expr: &str,
    args: &BTreeMap<String, String>,
    timeout: Option<Duration>,
) -> Result<serde_json::Value, EvalError> {
    let nix = Nix::locate().ok_or(EvalError::NixNotFound)?;
    let pairs: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // A timeout too long to be a point in time is no deadline (not a panic).
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let watch = super::process::Watch { deadline, cancel: None };
    let out = nix.eval_expr(expr, &pairs, watch).map_err(|failure| match failure {
        Failure::Timeout => EvalError::Timeout(Box::new(Stopped::after(timeout.unwrap_or_default()))),
        Failure::Spawn(e) => EvalError::NixSpawn(e),
        Failure::Cancelled => EvalError::Cancelled,
        Failure::Nix(m) => {
            EvalError::Fleet { fleet: "the expression".into(), message: m.message, location: m.location }
        }
    })?;
    serde_json::from_slice(&out).map_err(|e| EvalError::Output(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_data_and_errors_are_nix_messages() {
        let mut args = BTreeMap::new();
        args.insert("name".to_string(), "a\"; builtins.abort \"x".to_string());
        let value =
            evaluate_expression("{ name }: { inherit name; len = builtins.stringLength name; }", &args, None).unwrap();
        assert_eq!(value["name"], "a\"; builtins.abort \"x");
        assert_eq!(value["len"], 21);
        let err = evaluate_expression("throw \"boom\"", &BTreeMap::new(), None).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        let err =
            evaluate_expression("let f = x: f x; in f 1", &BTreeMap::new(), Some(Duration::from_secs(1))).unwrap_err();
        assert!(matches!(err, EvalError::Timeout(_) | EvalError::Fleet { .. }), "{err}");
    }

    #[test]
    fn an_expression_is_never_read_as_a_flag_and_any_timeout_is_fine() {
        assert_eq!(evaluate_expression("-1", &BTreeMap::new(), None).unwrap(), serde_json::json!(-1));
        let err = evaluate_expression("--help", &BTreeMap::new(), None).unwrap_err();
        assert!(matches!(err, EvalError::Fleet { .. }), "a Nix error, not nix's help: {err}");
        // Argument names and values that look like flags stay data.
        let args = BTreeMap::from([("x".to_string(), "--help".to_string())]);
        assert_eq!(evaluate_expression("{ x }: x", &args, None).unwrap(), "--help");
        // Past what an Instant can hold: no deadline, no panic.
        let forever = Some(Duration::from_secs(u64::MAX));
        assert_eq!(evaluate_expression("1", &BTreeMap::new(), forever).unwrap(), 1);
    }
}
