//! `--on` expressions: any text parses or is refused; a selection on a
//! small fleet is a subset of it whose order still covers every machine.
#![no_main]

use std::sync::OnceLock;

use lab_core::graph::{Expand, Fleet, Limits, Selector};
use lab_core::metadata::parse_fleet_json;
use lab_core::printable::printable;
use libfuzzer_sys::fuzz_target;

const FLEET: &str = r#"{
  "router": {"role": "router", "rebootOrder": 0, "groups": ["core"]},
  "dns-1": {"role": "dns", "rebootOrder": 1, "groups": ["core", "dns"], "dependencies": ["router"]},
  "dns-2": {"role": "dns", "rebootOrder": 1, "groups": ["dns"], "dependencies": ["router"]},
  "web-01": {"role": "web-server", "rebootOrder": 2, "groups": ["frontend"], "dependencies": ["dns-1", "db"]},
  "db": {"role": "database", "rebootOrder": 1, "groups": ["core"], "orchestration": {"criticalityLevel": "critical"}}
}"#;

fn fleet() -> &'static Fleet {
    static FLEET_CELL: OnceLock<Fleet> = OnceLock::new();
    FLEET_CELL.get_or_init(|| Fleet::from_map(&parse_fleet_json(FLEET, None).unwrap()).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let selector = match text.parse::<Selector>() {
        Ok(selector) => selector,
        Err(e) => return assert!(!e.to_string().is_empty()),
    };
    let fleet = fleet();
    for (dependencies, dependents) in [(false, false), (true, false), (false, true), (true, true)] {
        match fleet.select(&selector, Expand { dependencies, dependents }) {
            Ok(part) => {
                assert!(!part.is_empty() && part.len() <= fleet.len());
                assert!(part.machines().iter().all(|m| fleet.machine(&m.name).is_some()));
                assert_eq!(part.sequence(&Limits::default()).len(), part.len());
            }
            // Messages show the expression with control characters escaped.
            Err(e) => assert!(e.to_string().contains(&*printable(selector.expression()))),
        }
    }
});
