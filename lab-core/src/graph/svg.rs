//! The fleet's graph as an SVG picture, one band per wave, top to bottom,
//! for the dashboard (and anyone who wants an image without Graphviz).
//!
//! The layout is fixed arithmetic, no layout engine: each wave is a band,
//! its machines side by side in wave order (wrapped after [`PER_ROW`]),
//! each band centred; arrows go from a machine to the machines that need
//! it, as in `lab graph`. The same fleet and limits always give the same
//! bytes. Each machine's box carries `data-machine` (its name) so a page
//! can colour it by status; its border shows its criticality as `lab
//! graph` does.

use std::fmt::Write;

use super::render::{criticality_name, run_edges};
use super::{Fleet, Limits};
use crate::metadata::Criticality;
use crate::printable::printable;

/// Machines on one row of a wave's band before it wraps.
pub const PER_ROW: usize = 8;
const NODE_W: usize = 156;
const NODE_H: usize = 44;
const GAP_X: usize = 24;
const ROW_GAP: usize = 16;
const BAND_PAD: usize = 14;
const BAND_GAP: usize = 36;
const LABEL_W: usize = 70;
const MARGIN: usize = 10;
/// Room on the right for the arrows that pass waves.
const BOW: usize = 28;
/// Longest name shown in full on a box (the rest is in its tooltip).
const NAME_CHARS: usize = 20;

/// Text for XML: control characters shown escaped, markup escaped.
fn xml(s: &str) -> String {
    printable(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `s` cut to `n` characters with an ellipsis.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// Draws `fleet` with its waves under `limits` as an SVG document.
pub fn render_svg(fleet: &Fleet, limits: &Limits) -> String {
    let waves = fleet.wave_indexes(limits, &|_| true);
    let widest = waves.iter().map(|w| w.len().min(PER_ROW)).max().unwrap_or(0).max(1);
    let inner = widest * NODE_W + (widest - 1) * GAP_X;
    let width = MARGIN * 2 + LABEL_W + inner + BAND_PAD * 2 + BOW;
    // Each machine's box: its top-left corner.
    let mut at = vec![(0usize, 0usize); fleet.machines.len()];
    let mut bands = Vec::with_capacity(waves.len());
    let mut y = MARGIN;
    for wave in &waves {
        let rows = wave.len().div_ceil(PER_ROW).max(1);
        let height = BAND_PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP;
        for (row, chunk) in wave.chunks(PER_ROW).enumerate() {
            let row_w = chunk.len() * NODE_W + (chunk.len() - 1) * GAP_X;
            let x0 = MARGIN + LABEL_W + BAND_PAD + (inner - row_w) / 2;
            for (k, &i) in chunk.iter().enumerate() {
                at[i] = (x0 + k * (NODE_W + GAP_X), y + BAND_PAD + row * (NODE_H + ROW_GAP));
            }
        }
        bands.push((y, height));
        y += height + BAND_GAP;
    }
    let height = if waves.is_empty() { MARGIN * 2 } else { y - BAND_GAP + MARGIN };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"lab-graph\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    out.push_str(
        "<title>lab graph: arrows go from a machine to the machines that need it; each band is a wave</title>\n",
    );
    out.push_str(
        "<defs><marker id=\"lab-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#7f8c8d\"/></marker></defs>\n",
    );
    for (w, (top, h)) in bands.iter().enumerate() {
        let _ = writeln!(
            out,
            "<g class=\"wave\" data-wave=\"{n}\"><rect x=\"{MARGIN}\" y=\"{top}\" width=\"{bw}\" height=\"{h}\" rx=\"8\" \
             fill=\"#f4f6f8\" stroke=\"#d5dbe1\"/><text x=\"{tx}\" y=\"{ty}\" fill=\"#5d6d7e\">wave {n}</text></g>",
            n = w + 1,
            bw = width - MARGIN * 2,
            tx = MARGIN + 10,
            ty = top + h / 2 + 4,
        );
    }
    let mut wave_of = vec![0usize; fleet.machines.len()];
    for (w, wave) in waves.iter().enumerate() {
        for &i in wave {
            wave_of[i] = w;
        }
    }
    for (from, to) in run_edges(fleet) {
        let ((fx, fy), (tx, ty)) = (at[from], at[to]);
        let d = if wave_of[to] == wave_of[from] + 1 {
            // Into the next wave: bottom to top.
            let (x1, y1, x2, y2) = (fx + NODE_W / 2, fy + NODE_H, tx + NODE_W / 2, ty);
            let mid = (y1 + y2) / 2;
            format!("M{x1},{y1}C{x1},{mid} {x2},{mid} {x2},{y2}")
        } else {
            // Past other waves: side to side, bowed out to the right of
            // every box it passes. With both control points at `bow`, the
            // curve reaches 3/4 of the way from its ends to them.
            let (x1, y1, x2, y2) = (fx + NODE_W, fy + NODE_H / 2, tx + NODE_W, ty + NODE_H / 2);
            let right = waves[wave_of[from] + 1..wave_of[to]]
                .iter()
                .flatten()
                .map(|&i| at[i].0 + NODE_W)
                .fold(x1.max(x2), usize::max);
            let x = x1.max(x2);
            let bow = x + (right + BOW / 2 - x).div_ceil(3) * 4;
            format!("M{x1},{y1}C{bow},{y1} {bow},{y2} {x2},{y2}")
        };
        let _ = writeln!(
            out,
            "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"{d}\" \
             fill=\"none\" stroke=\"#7f8c8d\" stroke-width=\"1.5\" marker-end=\"url(#lab-arrow)\"/>",
            xml(&fleet.machines[from].name),
            xml(&fleet.machines[to].name),
        );
    }
    for (i, m) in fleet.machines.iter().enumerate() {
        let (x, y) = at[i];
        let c = m.metadata.orchestration.criticality_level;
        let (stroke, stroke_w, dash) = match c {
            Criticality::Critical => ("#c0392b", 3, ""),
            Criticality::High => ("#e67e22", 2, ""),
            Criticality::Medium => ("#34495e", 1, ""),
            Criticality::Low => ("#34495e", 1, " stroke-dasharray=\"4 3\""),
        };
        let level = criticality_name(c);
        let _ = writeln!(
            out,
            "<g class=\"node criticality-{level}\" data-machine=\"{name}\"><title>{name} ({role}, {level})</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\" fill=\"#ffffff\" \
             stroke=\"{stroke}\" stroke-width=\"{stroke_w}\"{dash}/>\
             <text x=\"{cx}\" y=\"{ty1}\" text-anchor=\"middle\" font-weight=\"bold\">{label}</text>\
             <text x=\"{cx}\" y=\"{ty2}\" text-anchor=\"middle\" fill=\"#5d6d7e\" font-size=\"11\">{sub}</text></g>",
            name = xml(&m.name),
            role = xml(&m.metadata.role),
            label = xml(&short(&m.name, NAME_CHARS)),
            sub = xml(&short(&format!("{} · {level}", m.metadata.role), NAME_CHARS + 4)),
            cx = x + NODE_W / 2,
            ty1 = y + 18,
            ty2 = y + 34,
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::metadata::{parse_machine, Machine};

    fn machine(name: &str, deps: &[&str], order: i64, criticality: &str) -> Machine {
        let value = json!({
            "role": "server", "rebootOrder": order, "dependencies": deps, "hostname": name,
            "orchestration": { "criticalityLevel": criticality },
        });
        parse_machine(name, value, None).expect("test machine is valid")
    }

    fn fleet() -> Fleet {
        Fleet::new(vec![
            machine("web-2", &["db"], 2, "low"),
            machine("router", &[], 0, "critical"),
            machine("db", &["router"], 1, "high"),
            machine("web-1", &["db"], 2, "medium"),
            machine("a<b>&\"c\"", &["router"], 3, "medium"),
            machine("mon", &["router"], 4, "low"),
        ])
        .unwrap()
    }

    fn limits(n: usize) -> Limits {
        Limits::parallel(n.try_into().unwrap())
    }

    #[test]
    fn svg_snapshot() {
        insta::assert_snapshot!(render_svg(&fleet(), &limits(2)));
    }

    #[test]
    fn the_same_fleet_in_any_order_draws_the_same_bytes() {
        let mut machines = fleet().machines().to_vec();
        machines.reverse();
        let again = Fleet::new(machines).unwrap();
        assert_eq!(render_svg(&again, &limits(2)), render_svg(&fleet(), &limits(2)));
    }

    #[test]
    fn every_machine_and_dependency_is_drawn_once_in_its_wave() {
        let svg = render_svg(&fleet(), &limits(2));
        let waves = fleet().waves(&limits(2)).len();
        assert_eq!(svg.matches("class=\"wave\"").count(), waves);
        assert_eq!(svg.matches("<g class=\"node").count(), 6);
        assert_eq!(svg.matches("class=\"edge\"").count(), 5);
        assert!(svg.contains("data-machine=\"a&lt;b&gt;&amp;&quot;c&quot;\""), "names are escaped: {svg}");
        assert!(!svg.contains("a<b>"), "{svg}");
        // Each box lies below the boxes of its dependencies.
        let y_of = |name: &str| {
            let at = svg.find(&format!("data-machine=\"{name}\"")).unwrap();
            let rect = &svg[at..];
            let y = &rect[rect.find(" y=\"").unwrap() + 4..];
            y[..y.find('"').unwrap()].parse::<usize>().unwrap()
        };
        assert!(y_of("router") < y_of("db") && y_of("db") < y_of("web-1") && y_of("web-1") <= y_of("web-2"));
        // router -> mon passes two waves: it bows out right of their boxes
        // (its curve reaches 3/4 of the way to its control points).
        let edge = &svg[svg.find("data-from=\"router\" data-to=\"mon\" d=\"M").unwrap() + 37..];
        let numbers: Vec<usize> = edge
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .take(3)
            .map(|n| n.parse().unwrap())
            .collect();
        let (start, bow) = (numbers[0], numbers[2]);
        assert!(start + (bow - start) * 3 / 4 > 274 + NODE_W, "clears a<b>'s box (x 274): {edge:.60}");
    }

    #[test]
    fn a_wide_wave_wraps_and_long_names_are_cut() {
        let long = "a-machine-with-a-very-long-name";
        let mut machines: Vec<Machine> =
            (0..PER_ROW + 2).map(|i| machine(&format!("m{i:02}"), &[], 0, "low")).collect();
        machines.push(machine(long, &[], 0, "low"));
        let fleet = Fleet::new(machines).unwrap();
        let svg = render_svg(&fleet, &limits(100));
        assert_eq!(svg.matches("class=\"wave\"").count(), 1);
        let width: usize = svg.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(width < (PER_ROW + 1) * (NODE_W + GAP_X) + LABEL_W + BOW * 4, "wrapped at {PER_ROW}: {width}");
        assert!(svg.contains(&format!("{long} (server, low)")), "the full name in the tooltip");
        assert!(svg.contains("a-machine-with-a-ve…<"), "cut on the box");
    }

    #[test]
    fn an_empty_fleet_is_an_empty_picture() {
        let svg = render_svg(&Fleet::new(Vec::new()).unwrap(), &limits(1));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(!svg.contains("class=\"node"));
    }
}
