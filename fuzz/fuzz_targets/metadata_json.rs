//! The JSON contract: any text either reads as a fleet or is refused with
//! errors; a fleet that reads validates, builds its graph, and writes back
//! to JSON that reads as the same machines.
#![no_main]

use lab_core::graph::{fleet_problems, Fleet, Limits};
use lab_core::metadata::{parse_fleet_json, parse_machine, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_fleet_json(text, None) {
        Ok(fleet) => {
            for (name, machine) in &fleet {
                let _ = validate(name, &machine.metadata);
                let again = parse_machine(name, machine.to_json_value(), None).expect("lab reads what it writes");
                assert_eq!(&again, machine, "the JSON contract round-trips");
            }
            let _ = fleet_problems(&fleet);
            if let Ok(graph) = Fleet::from_map(&fleet) {
                assert_eq!(graph.sequence(&Limits::default()).len(), fleet.len());
            }
        }
        Err(errors) => assert!(!errors.is_empty(), "a refusal says why"),
    }
    // One machine on its own, as `lab health --local` reads it.
    if let Ok(value) = serde_json::from_str(text) {
        if let Ok(machine) = parse_machine("m", value, None) {
            let _ = validate("m", &machine.metadata);
        }
    }
});
