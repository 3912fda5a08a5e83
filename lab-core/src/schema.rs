//! The JSON Schema of one machine's `lab.machine` metadata, for editors and
//! for `lab schema`; `schema/lab-machine.schema.json` is this output committed.

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
