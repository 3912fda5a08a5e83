//! Building one machine's system over the C ABI, with the orchestrator's
//! builder (one nix evaluation, one `nix-store --realise`).

use std::ffi::c_char;

use serde_json::{json, Value};

use crate::boundary::{call, FfiError, LabStatus};
use crate::request::{OneMachine, Request};
use lab_core::orchestrate::{BuildError, Builder, NixBuilder};

/// Builds a machine's system on this host and returns its store path:
/// `{"machine": NAME, "outPath": "/nix/store/…", "drvPath": "/nix/store/….drv"}`.
///
/// `request`: the fleet source (a flake, a Nix file or a hosts directory;
/// the JSON contract has no systems) plus `"machine": NAME`. An unknown
/// machine is `LAB_ERR_NOT_FOUND`; a failed evaluation or build is
/// `LAB_ERR_EVALUATION` with kind "build". `*out` is freed with
/// `lab_string_free`.
///
/// # Safety
/// As [`lab_machines`](crate::lab_machines).
#[no_mangle]
pub unsafe extern "C" fn lab_build(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::<(OneMachine,)>::parse(request_json)?;
        let name = req.call.0.machine.get("machine")?;
        let evaluation = req.evaluate()?;
        if let Err(e) = evaluation.find(&name) {
            let (status, kind) = match e {
                lab_core::eval::LookupError::Failed(_) => (LabStatus::LabErrEvaluation, "evaluation"),
                _ => (LabStatus::LabErrNotFound, "unknown-machine"),
            };
            return Err(FfiError::new(status, kind, e.to_string()).machine(&name));
        }
        let cwd = std::env::current_dir().unwrap_or_default();
        let source = req.source.resolve(&cwd).map_err(|e| FfiError::invalid(e.to_string()))?;
        let builder = NixBuilder::new(&source)
            .map_err(|e| FfiError::core(LabStatus::LabErrInvalidArgument, "invalid-argument", &e))?;
        let failed = |e: BuildError| FfiError::core(LabStatus::LabErrEvaluation, "build", &e).machine(&name);
        crate::runtime()?.block_on(async {
            let systems = builder.instantiate(std::slice::from_ref(&name)).await.map_err(failed)?;
            let system = systems.get(&name).cloned().ok_or_else(|| {
                failed(BuildError::Eval { machines: name.clone(), message: "nix returned no system for it".into() })
            })?;
            builder.build(std::slice::from_ref(&system)).await.map_err(failed)?;
            Ok::<Value, FfiError>(json!({ "machine": name, "outPath": system.out_path, "drvPath": system.drv_path }))
        })
    })
}
