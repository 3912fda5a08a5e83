//! The JSON Schemas of one machine's `lab.machine` metadata (`lab schema`,
//! committed as `schema/lab-machine.schema.json`) and of a fleet's JSON form
//! (`lab schema --fleet`, committed as `schema/lab-fleet.schema.json`), for
//! editors and validators.

use crate::metadata::MachineMetadata;

/// The JSON Schema (draft 2020-12) of [`MachineMetadata`].
pub fn machine_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(MachineMetadata)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert("$id".into(), "https://lab.invalid/schema/lab-machine.schema.json".into());
    }
    schema
}

/// [`machine_schema`] as pretty JSON with a trailing newline: byte for byte
/// what `lab schema` prints and what is committed.
pub fn machine_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&machine_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// One machine of the fleet's JSON form: its `lab.machine` metadata plus
/// what NixOS says about it. Only for the schema: the data itself is a
/// [`crate::metadata::Machine`], whose `Serialize` writes these fields.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "machine",
    description = "One machine of a fleet: its lab.machine metadata, its networking.hostName and its enabled services."
)]
#[allow(dead_code)]
struct FleetMachine {
    #[serde(flatten)]
    metadata: MachineMetadata,
    /// networking.hostName, when known.
    #[serde(default)]
    hostname: Option<String>,
    /// Names of the enabled services.*, sorted.
    #[serde(default)]
    services: Vec<String>,
}

/// The fleet: machines by name.
#[derive(schemars::JsonSchema)]
#[schemars(
    title = "lab fleet",
    description = "A fleet in its JSON form, as `lab machines --json` prints it and `lab --json-file` reads it: an object keyed by machine name (the nixosConfigurations attribute). Every key is unique."
)]
#[allow(dead_code)]
struct Fleet(std::collections::BTreeMap<String, FleetMachine>);

/// The JSON Schema (draft 2020-12) of a fleet's JSON form: what
/// `lab machines --json` prints and `--json-file` reads.
pub fn fleet_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Fleet)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert("$id".into(), "https://lab.invalid/schema/lab-fleet.schema.json".into());
    }
    schema
}

/// [`fleet_schema`] as pretty JSON with a trailing newline: what
/// `lab schema --fleet` prints and `schema/lab-fleet.schema.json` holds.
pub fn fleet_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&fleet_schema()).unwrap_or_default();
    text.push('\n');
    text
}
