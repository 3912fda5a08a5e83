//! examples/rust/fleet.rs does what it says: the sequence, then a reboot
//! through the real orchestrator with its printing executor.

#[allow(dead_code)]
#[path = "../../examples/rust/fleet.rs"]
mod fleet;

use lab_core::orchestrate::Outcome;

#[tokio::test]
async fn rust_example_reboots_the_fleet_with_its_own_executor() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut out = Vec::new();
    let report = fleet::run(&root.join("lab-core/tests/fixtures/fleets/example.json"), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.outcome, Outcome::Success, "{report:?}\n{text}");
    assert!(text.contains("Reboot sequence:\n  1. router (wave 1)\n"), "{text}");
    assert!(text.contains("  [router] $ reboot\n"), "{text}");
    // desktop's targetUser is not root: its reboot goes through sudo.
    assert!(text.contains("  [desktop] $ sudo -n -H -- reboot\n"), "{text}");
    assert!(text.contains("success: 7 done"), "{text}");
    assert!(text.find("[router] $ reboot") < text.find("[sleeper-service] $ reboot"), "{text}");
}
