//! A machine as lab sees it: its name, what NixOS says about it (hostname,
//! enabled services) and its `lab.machine` metadata; and parsing of the JSON
//! contract (`lab machines --json`, `/etc/lab-machine-metadata.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::MachineMetadata;
use crate::printable::printable;

/// One managed machine of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The name under which the fleet knows it (the `nixosConfigurations` attribute).
    pub name: String,
    /// `networking.hostName`, when known.
    pub hostname: Option<String>,
    /// Names of the enabled `services.*`, sorted.
    pub services: Vec<String>,
    /// Its `lab.machine` options.
    pub metadata: MachineMetadata,
}

impl Machine {
    /// The address lab connects to: `targetHost`, else the hostname, else the name.
    pub fn target_host(&self) -> &str {
        self.metadata.target_host.as_deref().or(self.hostname.as_deref()).unwrap_or(&self.name)
    }

    /// The JSON contract for one machine (see its [`Serialize`] impl) as a
    /// [`Value`].
    pub fn to_json_value(&self) -> Value {
        // Cannot fail: every map key is a string.
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl Serialize for Machine {
    /// The JSON contract for one machine: the camelCase metadata plus
    /// `hostname` and `services`, keys sorted as `builtins.toJSON` sorts
    /// them. Written directly: every listing and the evaluation cache go
    /// through here, and building a `Value` first cost more than the rest
    /// of reading a fleet.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// Fields in sorted key order (as `builtins.toJSON` sorts them); the
        /// metadata's own types declare theirs sorted too.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Sorted<'a> {
            dependencies: &'a [String],
            groups: &'a [String],
            health_checks: &'a [super::HealthCheck],
            hostname: &'a Option<String>,
            orchestration: &'a super::Orchestration,
            reboot_order: i64,
            role: &'a str,
            services: &'a [String],
            target_host: &'a Option<String>,
            target_port: i64,
            target_user: &'a str,
        }
        // Exhaustive: a new metadata field does not compile until it is
        // placed here.
        let MachineMetadata {
            dependencies,
            groups,
            health_checks,
            orchestration,
            reboot_order,
            role,
            target_host,
            target_port,
            target_user,
        } = &self.metadata;
        Sorted {
            dependencies,
            groups,
            health_checks,
            hostname: &self.hostname,
            orchestration,
            reboot_order: *reboot_order,
            role,
            services: &self.services,
            target_host,
            target_port: *target_port,
            target_user,
        }
        .serialize(serializer)
    }
}

/// Metadata that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MetadataError {
    /// The JSON does not have the shape of `lab.machine`.
    #[error("machine `{}`{}: {path}: {message}", printable(machine), file_suffix(file))]
    Invalid {
        /// The machine whose metadata is wrong.
        machine: String,
        /// The file it was read from, when it came from a file.
        file: Option<PathBuf>,
        /// Where in the metadata, e.g. `healthChecks[0].port`.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The text is not JSON at all, or not an object keyed by machine name.
    #[error("{}: {message}", file.as_ref().map_or("fleet JSON".to_string(), |f| f.display().to_string()))]
    NotAFleet {
        /// The file it was read from, when it came from a file.
        file: Option<PathBuf>,
        /// What is wrong and what to do.
        message: String,
    },
}

fn file_suffix(file: &Option<PathBuf>) -> String {
    file.as_ref().map_or(String::new(), |f| format!(" ({})", f.display()))
}

/// Reads one machine from its JSON contract form (metadata plus optional
/// `hostname` and `services`). Unknown fields are errors naming the field.
pub fn parse_machine(name: &str, value: Value, file: Option<&Path>) -> Result<Machine, MetadataError> {
    let invalid = |path: String, message: String| MetadataError::Invalid {
        machine: name.to_string(),
        file: file.map(Path::to_path_buf),
        path,
        message,
    };
    let Value::Object(mut object) = value else {
        return Err(invalid(
            ".".into(),
            format!("expected an object of lab.machine options, found {}", json_kind(&value)),
        ));
    };
    let hostname = read_hostname(object.remove("hostname")).map_err(|m| invalid("hostname".into(), m))?;
    let services = read_services(object.remove("services")).map_err(|m| invalid("services".into(), m))?;
    let mut object = Value::Object(object);
    whole_numbers(&mut object);
    let metadata: MachineMetadata = serde_path_to_error::deserialize(object).map_err(|e| {
        let path = e.path().to_string();
        invalid(path, e.into_inner().to_string())
    })?;
    Ok(Machine { name: name.to_string(), hostname, services, metadata })
}

/// Reads one machine from its `lab.machine` option values, for a
/// configuration that has no `lab.metadata`: one importing the original
/// design's module (which defines only `options.lab.machine`) or setting
/// `lab.machine` directly. `hostname` is its `networking.hostName` and
/// `services` its enabled services, as nix gave them (null when absent).
///
/// The result is the machine lab's own module would give for the same
/// options: the module's defaults come from the types (serde defaults), an
/// unset `targetHost` is the hostname as the module defaults it, and the
/// module's assertions are [`validate`](super::validate)'s checks, which
/// every machine goes through whichever module it came from.
pub fn parse_machine_options(
    name: &str,
    options: Value,
    hostname: Value,
    services: Value,
) -> Result<Machine, MetadataError> {
    let invalid =
        |path: String, message: String| MetadataError::Invalid { machine: name.to_string(), file: None, path, message };
    if !options.is_object() {
        return Err(invalid(
            ".".into(),
            format!("expected an object of lab.machine options, found {}", json_kind(&options)),
        ));
    }
    let hostname = read_hostname(Some(hostname)).map_err(|m| invalid("networking.hostName".into(), m))?;
    let services = read_services(Some(services)).map_err(|m| invalid("services".into(), m))?;
    let mut options = options;
    whole_numbers(&mut options);
    let mut metadata: MachineMetadata = serde_path_to_error::deserialize(options).map_err(|e| {
        let path = e.path().to_string();
        invalid(path, e.into_inner().to_string())
    })?;
    if metadata.target_host.is_none() {
        metadata.target_host.clone_from(&hostname);
    }
    Ok(Machine { name: name.to_string(), hostname, services, metadata })
}

/// `hostname` of the contract: a string, or absent / null.
fn read_hostname(value: Option<Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(h)) => Ok(Some(h)),
        Some(other) => Err(format!("expected a string, found {}", json_kind(&other))),
    }
}

/// `services` of the contract, sorted: a list of names, or absent / null.
fn read_services(value: Option<Value>) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(value) => {
            let mut services: Vec<String> =
                serde_json::from_value(value).map_err(|e| format!("expected a list of service names: {e}"))?;
            services.sort();
            Ok(services)
        }
    }
}

/// Every number written with a fraction of zero (`1.0`, `1e2`) as the
/// integer it is. JSON has one number type and the JSON Schema of the
/// contract says `integer`, which such numbers satisfy; nix writes integers
/// without a fraction, other producers (jq, Python) may not. Every number
/// of the metadata is an integer, so nothing else changes meaning.
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64() {
                // Within i64, exactly: beyond 2^63 a float cannot say which integer it is.
                if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Reads a fleet from its JSON contract: an object keyed by machine name
/// (what `lab machines --json` prints, or collected
/// `/etc/lab-machine-metadata.json` files). Every machine is read; all the
/// errors are returned together.
pub fn parse_fleet_json(text: &str, file: Option<&Path>) -> Result<BTreeMap<String, Machine>, Vec<MetadataError>> {
    let (machines, errors) = read_fleet_json(text, file).map_err(|e| vec![e])?;
    if errors.is_empty() {
        Ok(machines)
    } else {
        Err(errors)
    }
}

/// Reads a fleet from its JSON contract, keeping the machines that read
/// beside the errors of those that do not (as a nix source keeps the hosts
/// that evaluate beside the failed ones). `Err` when the text as a whole is
/// no fleet: not JSON, not an object, or a key given twice anywhere (JSON
/// parsers disagree on which one wins, so lab takes neither and names it).
pub fn read_fleet_json(
    text: &str,
    file: Option<&Path>,
) -> Result<(BTreeMap<String, Machine>, Vec<MetadataError>), MetadataError> {
    let not_a_fleet = |message: String| MetadataError::NotAFleet { file: file.map(Path::to_path_buf), message };
    let value = strict_json(text).map_err(|e| not_a_fleet(format!("not valid JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(not_a_fleet(format!(
            "expected an object keyed by machine name (as `lab machines --json` prints), found {}",
            json_kind(&value)
        )));
    };
    let mut machines = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, value) in object {
        match parse_machine(&name, value, file) {
            Ok(machine) => {
                machines.insert(name, machine);
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((machines, errors))
}

/// Parses JSON like `serde_json::from_str`, but a key given twice in one
/// object is an error naming the key and where it is (serde_json keeps the
/// last one silently).
pub fn strict_json(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde::de::DeserializeSeed::deserialize(Strict { path: "" }, &mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Builds a [`Value`], refusing repeated keys; `path` says where it is.
struct Strict<'a> {
    path: &'a str,
}

impl Strict<'_> {
    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict { path: &format!("{}[{}]", self.path, items.len()) })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.child(&key);
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{}` is given twice (at {}); keep one",
                    printable(&key),
                    printable(&path)
                )));
            }
            let value = map.next_value_seed(Strict { path: &path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializing_writes_exactly_the_json_contract() {
        let value = serde_json::json!({
            "role": "web", "rebootOrder": 3, "groups": ["b", "a"], "dependencies": ["db"],
            "targetHost": "web.lan", "targetUser": "deploy", "targetPort": 2222,
            "hostname": "web-1", "services": ["nginx", "postgresql"],
            "orchestration": { "deployStrategy": "blue-green", "criticalityLevel": "high", "rebootDelay": 7 },
            "healthChecks": [
                { "type": "http", "url": "https://web/health", "headers": { "X-B": "2", "A": "1" },
                  "expectedStatus": ["200", "204"], "tlsVerify": false, "description": "front" },
                { "type": "tcp", "port": 5432, "host": "db", "runOn": "controller", "required": false },
                { "type": "command", "command": "systemctl is-active nginx", "initialDelay": 2 }
            ]
        });
        let machine = parse_machine("web", value, None).unwrap();
        let direct = serde_json::to_string(&machine).unwrap();
        // A `Value`'s maps sort their keys: equal text means sorted at every level.
        assert_eq!(direct, machine.to_json_value().to_string());
        // Nothing lost: the contract reads back as the same machine.
        assert_eq!(parse_machine("web", machine.to_json_value(), None).unwrap(), machine);
        assert!(direct.starts_with(r#"{"dependencies":["db"],"groups":["b","a"],"healthChecks":[{"command":null,"#));
        let bare = parse_machine("m", serde_json::json!({ "role": "r", "rebootOrder": 0 }), None).unwrap();
        assert_eq!(serde_json::to_string(&bare).unwrap(), bare.to_json_value().to_string());
    }
}
