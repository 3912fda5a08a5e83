//! The diffs as text, in `nix store diff-closures`' notation: `∅` for no
//! version on a side, `ε` for an empty version.

use std::fmt::Write;

use super::{MachineDiff, SystemDiff};
use crate::printable::printable;

/// A byte count in binary units with one decimal (`12.5 MiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A signed byte count (`+1.2 MiB`, `-300 B`, `±0 B`).
pub fn signed_size(delta: i64) -> String {
    match delta.signum() {
        1 => format!("+{}", human_size(delta.unsigned_abs())),
        -1 => format!("-{}", human_size(delta.unsigned_abs())),
        _ => "±0 B".into(),
    }
}

fn versions(list: &[String]) -> String {
    if list.is_empty() {
        return "∅".into();
    }
    list.iter()
        .map(|v| if v.is_empty() { "ε".to_string() } else { printable(v).into_owned() })
        .collect::<Vec<_>>()
        .join(", ")
}

impl SystemDiff {
    /// The diff as indented lines under a machine's header.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if self.unchanged {
            let _ = writeln!(out, "  no change: it already runs {}", printable(&self.new_system));
        } else {
            let _ = writeln!(out, "  {} → {}", printable(&self.current_system), printable(&self.new_system));
        }
        for c in &self.changed {
            let _ = writeln!(
                out,
                "  [C] {}: {} → {}, {}",
                printable(&c.name),
                versions(&c.before),
                versions(&c.after),
                signed_size(c.size_delta_bytes)
            );
        }
        for p in &self.added {
            let _ =
                writeln!(out, "  [A] {}: {}, {}", printable(&p.name), versions(&p.versions), human_size(p.size_bytes));
        }
        for p in &self.removed {
            let _ =
                writeln!(out, "  [R] {}: {}, {}", printable(&p.name), versions(&p.versions), human_size(p.size_bytes));
        }
        let c = &self.closure;
        let _ = writeln!(
            out,
            "  closure: {} → {} ({}), {} → {} paths (+{}, -{})",
            human_size(c.before_bytes),
            human_size(c.after_bytes),
            signed_size(c.delta_bytes),
            c.before_paths,
            c.after_paths,
            c.paths_added,
            c.paths_removed
        );
        let boot: Vec<String> =
            self.boot.iter().map(|b| format!("{} {}", b.part, if b.changed { "changes" } else { "same" })).collect();
        let reboot = match &self.reboot_reason {
            Some(reason) => format!("reboot needed ({reason})"),
            None => "no reboot needed".into(),
        };
        let _ = writeln!(out, "  boot: {}; {reboot}", boot.join(", "));
        out
    }
}

/// Every machine's diff: a header line per machine (`web: 1 changed, 1
/// added, 1 removed, reboot needed`), then its lines; a machine without a
/// diff shows its error.
pub fn render_text(diffs: &[MachineDiff]) -> String {
    let mut out = String::new();
    for (i, m) in diffs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match (&m.diff, &m.error) {
            (Some(d), _) => {
                let _ = writeln!(
                    out,
                    "{}: {} changed, {} added, {} removed, {}",
                    printable(&m.machine),
                    d.changed.len(),
                    d.added.len(),
                    d.removed.len(),
                    if d.reboot_needed { "reboot needed" } else { "no reboot" }
                );
                out.push_str(&d.render_text());
            }
            (None, error) => {
                let _ =
                    writeln!(out, "{}: cannot tell: {}", printable(&m.machine), error.as_deref().unwrap_or("unknown"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(signed_size(-2048), "-2.0 KiB");
        assert_eq!(signed_size(0), "±0 B");
        assert_eq!(signed_size(10), "+10 B");
    }

    #[test]
    fn versions_use_diff_closures_notation() {
        assert_eq!(versions(&[]), "∅");
        assert_eq!(versions(&["".into(), "1.0".into()]), "ε, 1.0");
    }
}
