//! The fleet's order as people read it: the reboot sequence, and the graph
//! as Graphviz dot, Mermaid or JSON with waves as ranks.
//!
//! Arrows go from a machine to the machines that need it, i.e. in the order
//! of a run, so the drawing reads top-down like the sequence does.

use std::fmt::Write;

use serde::Serialize;
use serde_json::json;

use super::{Fleet, Limits};
use crate::metadata::Criticality;
use crate::printable::printable;

/// One line of the reboot sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceEntry {
    /// 1-based position in the sequence.
    pub position: usize,
    /// 1-based wave; machines of one wave reboot together.
    pub wave: usize,
    /// The machine.
    pub machine: String,
    /// Its rebootOrder.
    pub reboot_order: i64,
    /// Its rebootDelay, seconds.
    pub reboot_delay: i64,
    /// Its criticalityLevel.
    pub criticality_level: Criticality,
}

/// A format `lab graph` draws in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz dot: `lab graph | dot -Tsvg`.
    Dot,
    /// A Mermaid flowchart, for Markdown.
    Mermaid,
    /// Machines with their wave and dependencies, and the waves.
    Json,
}

impl Fleet {
    /// The reboot sequence: the waves under `limits`, flattened.
    pub fn sequence(&self, limits: &Limits) -> Vec<SequenceEntry> {
        let mut out = Vec::with_capacity(self.machines.len());
        for (w, wave) in self.waves(limits).into_iter().enumerate() {
            for m in wave {
                out.push(SequenceEntry {
                    position: out.len() + 1,
                    wave: w + 1,
                    machine: m.name.clone(),
                    reboot_order: m.metadata.reboot_order,
                    reboot_delay: m.metadata.orchestration.reboot_delay,
                    criticality_level: m.metadata.orchestration.criticality_level,
                });
            }
        }
        out
    }

    /// The reboot sequence as text, in the original tool's form
    /// (`  1. router (delay: 0 seconds)`) under one heading per wave.
    pub fn render_sequence(&self, limits: &Limits) -> String {
        let entries = self.sequence(limits);
        let waves = entries.last().map_or(0, |e| e.wave);
        let mut out = format!(
            "Reboot sequence ({} machines, {} waves, max parallel {}):\n",
            entries.len(),
            waves,
            limits.max_parallel
        );
        for (i, e) in entries.iter().enumerate() {
            if i == 0 || entries[i - 1].wave != e.wave {
                let _ = writeln!(out, "wave {}", e.wave);
            }
            let _ = writeln!(out, "  {}. {} (delay: {} seconds)", e.position, printable(&e.machine), e.reboot_delay);
        }
        out
    }
}

/// Draws `fleet` in `format`, with the waves under `limits` as ranks and
/// each machine's criticality shown.
pub fn render_graph(fleet: &Fleet, format: GraphFormat, limits: &Limits) -> String {
    let waves = fleet.wave_indexes(limits, &|_| true);
    match format {
        GraphFormat::Dot => dot(fleet, &waves),
        GraphFormat::Mermaid => mermaid(fleet, &waves),
        GraphFormat::Json => {
            let mut text = serde_json::to_string_pretty(&graph_json(fleet, &waves, limits)).unwrap_or_default();
            text.push('\n');
            text
        }
    }
}

/// Edges in the order of a run: (dependency, dependent), sorted.
pub(super) fn run_edges(fleet: &Fleet) -> Vec<(usize, usize)> {
    use petgraph::visit::EdgeRef;
    let mut edges: Vec<(usize, usize)> =
        fleet.graph.edge_references().map(|e| (e.target().index(), e.source().index())).collect();
    edges.sort_unstable();
    edges
}

/// The criticality as written in Nix.
pub(crate) fn criticality_name(c: Criticality) -> &'static str {
    match c {
        Criticality::Low => "low",
        Criticality::Medium => "medium",
        Criticality::High => "high",
        Criticality::Critical => "critical",
    }
}

/// Text inside a dot string: control characters shown escaped, then
/// backslashes and quotes escaped for dot.
fn dot_escape(s: &str) -> String {
    printable(s).replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", dot_escape(s))
}

fn dot(fleet: &Fleet, waves: &[Vec<usize>]) -> String {
    let mut out = String::new();
    out.push_str("// lab graph: arrows go from a machine to the machines that need it; each box is a wave.\n");
    out.push_str("digraph lab {\n  newrank=true;\n  rankdir=TB;\n  fontname=\"Helvetica\";\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    for (w, wave) in waves.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_wave_{} {{\n    label=\"wave {}\";\n    rank=same;", w + 1, w + 1);
        for &i in wave {
            let m = &fleet.machines[i];
            let c = m.metadata.orchestration.criticality_level;
            let style = match c {
                Criticality::Critical => ", color=\"#c0392b\", penwidth=3",
                Criticality::High => ", color=\"#e67e22\", penwidth=2",
                Criticality::Medium => "",
                Criticality::Low => ", style=\"rounded,dashed\"",
            };
            let label =
                format!("\"{}\\n{} · {}\"", dot_escape(&m.name), dot_escape(&m.metadata.role), criticality_name(c));
            let _ = writeln!(out, "    {} [label={label}{style}];", dot_quote(&m.name));
        }
        out.push_str("  }\n");
    }
    for (from, to) in run_edges(fleet) {
        let _ =
            writeln!(out, "  {} -> {};", dot_quote(&fleet.machines[from].name), dot_quote(&fleet.machines[to].name));
    }
    // Invisible edges keep each wave on its own rank below the one before,
    // even where no dependency says so.
    for pair in waves.windows(2) {
        let (a, b) = (&fleet.machines[pair[0][0]].name, &fleet.machines[pair[1][0]].name);
        let _ = writeln!(out, "  {} -> {} [style=invis];", dot_quote(a), dot_quote(b));
    }
    out.push_str("}\n");
    out
}

fn mermaid_text(s: &str) -> String {
    printable(s).replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
}

fn mermaid(fleet: &Fleet, waves: &[Vec<usize>]) -> String {
    let mut out = String::new();
    out.push_str("%% lab graph: arrows go from a machine to the machines that need it; each box is a wave.\n");
    out.push_str("flowchart TB\n");
    for (w, wave) in waves.iter().enumerate() {
        let _ = writeln!(out, "  subgraph wave{}[\"wave {}\"]", w + 1, w + 1);
        for &i in wave {
            let m = &fleet.machines[i];
            let c = criticality_name(m.metadata.orchestration.criticality_level);
            let _ =
                writeln!(out, "    m{i}[\"{}<br/>{} · {c}\"]", mermaid_text(&m.name), mermaid_text(&m.metadata.role));
        }
        out.push_str("  end\n");
    }
    for (from, to) in run_edges(fleet) {
        let _ = writeln!(out, "  m{from} --> m{to}");
    }
    // Invisible links keep the waves in order where no dependency does.
    for w in 1..waves.len() {
        let _ = writeln!(out, "  wave{w} ~~~ wave{}", w + 1);
    }
    out.push_str("  classDef critical stroke:#c0392b,stroke-width:3px\n");
    out.push_str("  classDef high stroke:#e67e22,stroke-width:2px\n");
    out.push_str("  classDef low stroke-dasharray:4 3\n");
    for level in [Criticality::Critical, Criticality::High, Criticality::Low] {
        let ids: Vec<String> = (0..fleet.machines.len())
            .filter(|&i| fleet.machines[i].metadata.orchestration.criticality_level == level)
            .map(|i| format!("m{i}"))
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  class {} {}", ids.join(","), criticality_name(level));
        }
    }
    out
}

fn graph_json(fleet: &Fleet, waves: &[Vec<usize>], limits: &Limits) -> serde_json::Value {
    let mut wave_of = vec![0; fleet.machines.len()];
    for (w, wave) in waves.iter().enumerate() {
        for &i in wave {
            wave_of[i] = w + 1;
        }
    }
    let machines: Vec<serde_json::Value> = fleet
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let o = &m.metadata.orchestration;
            json!({
                "name": m.name,
                "role": m.metadata.role,
                "groups": m.metadata.groups,
                "rebootOrder": m.metadata.reboot_order,
                "criticalityLevel": o.criticality_level,
                "deployStrategy": o.deploy_strategy,
                "wave": wave_of[i],
                "dependencies": fleet.dependencies(&m.name).iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let waves: Vec<Vec<&str>> =
        waves.iter().map(|w| w.iter().map(|&i| fleet.machines[i].name.as_str()).collect()).collect();
    json!({ "limits": limits, "machines": machines, "waves": waves })
}
