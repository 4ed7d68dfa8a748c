//! The markdown tables printed after the JSON lines: ours beside the baselines, and ours
//! beside the peer frameworks.

use super::figure::Figure;
use super::peer_figure::PeerFigure;

/// The figures as a markdown table: figure, ours, baseline, ratio, target, met.
pub fn markdown_table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| figure | ours | baseline | ratio | target | met |\n| --- | ---: | ---: | ---: | --- | --- |\n",
    );
    for f in figures {
        let target = match (f.target.describe(), f.target.applies_to()) {
            (Some(t), Some("ours")) => format!("{t} {}", f.unit),
            (Some(t), _) => format!("ratio {t}"),
            _ => "informative".to_string(),
        };
        let met = match f.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} ({}) | {:.2} | {} | {} |\n",
            f.name,
            human(f.ours, f.unit),
            human(f.baseline, f.unit),
            f.baseline_name,
            f.ratio(),
            target,
            met
        ));
    }
    out
}

/// The peer figures as a markdown table: figure, ours, then each peer's value and
/// `ours / theirs`. The peers are the first figure's, in its order; a figure that lacks one
/// shows `-`.
pub fn peer_table(figures: &[PeerFigure]) -> String {
    let Some(first) = figures.first() else {
        return String::new();
    };
    let peers: Vec<(&str, &str)> = first.peers.iter().map(|p| (p.peer, p.version)).collect();
    let mut out = String::from("| figure | ours |");
    let mut rule = String::from("| --- | ---: |");
    for (peer, version) in &peers {
        out.push_str(&format!(" {peer} {version} | ours / {peer} |"));
        rule.push_str(" ---: | ---: |");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for f in figures {
        out.push_str(&format!("| {} | {} |", f.name, human(f.ours, f.unit)));
        for (peer, _) in &peers {
            match f.peers.iter().find(|p| p.peer == *peer) {
                Some(p) => out.push_str(&format!(
                    " {} | {:.2} |",
                    human(p.theirs, f.unit),
                    f.ratio(p)
                )),
                None => out.push_str(" - | - |"),
            }
        }
        out.push('\n');
    }
    out
}

/// `12_345_678 msgs/s` as `12.35 M msgs/s`, `850.2 ns` as `850 ns`.
fn human(value: f64, unit: &str) -> String {
    let a = value.abs();
    if a >= 1e9 {
        format!("{:.2} G {unit}", value / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M {unit}", value / 1e6)
    } else if a >= 1e4 {
        format!("{:.1} k {unit}", value / 1e3)
    } else if a >= 10.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_table_has_a_value_and_a_ratio_column_per_peer() {
        use super::super::Better;
        use super::super::peer_figure::PeerValue;
        let peer = |peer, theirs| PeerValue {
            peer,
            version: "0.1",
            theirs,
            setup: String::new(),
            extra: vec![],
        };
        let figure = PeerFigure {
            name: "peer_ask_rtt_ns",
            unit: "ns",
            better: Better::Lower,
            ours: 1000.0,
            runtime: "rt",
            capacity: None,
            peers: vec![peer("a", 2000.0), peer("b", 500.0)],
            extra: vec![],
        };
        let table = peer_table(&[figure]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| figure | ours | a 0.1 | ours / a | b 0.1 | ours / b |"
        );
        assert_eq!(
            lines[2],
            "| peer_ask_rtt_ns | 1000 ns | 2000 ns | 0.50 | 500 ns | 2.00 |"
        );
        assert_eq!(peer_table(&[]), "");
    }

    #[test]
    fn human_scales() {
        assert_eq!(human(12_345_678.0, "msgs/s"), "12.35 M msgs/s");
        assert_eq!(human(850.2, "ns"), "850 ns");
        assert_eq!(human(1.234, "x"), "1.23 x");
    }
}
