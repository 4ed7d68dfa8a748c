//! The markdown table printed after the JSON lines.

use super::figure::Figure;

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
    fn human_scales() {
        assert_eq!(human(12_345_678.0, "msgs/s"), "12.35 M msgs/s");
        assert_eq!(human(850.2, "ns"), "850 ns");
        assert_eq!(human(1.234, "x"), "1.23 x");
    }
}
