//! One measured figure: ours, the baseline, their ratio and the target it is held to; and
//! the list entry through which the report measures a figure of either kind.

use serde_json::{Value, json};

use super::RunConfig;
use super::peer_figure::PeerFigure;
use crate::BenchResult;

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// More is better (throughput).
    Higher,
    /// Less is better (latency, bytes).
    Lower,
}

/// What a figure is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Informative: no target.
    None,
    /// `ours / baseline` must be at least this.
    RatioAtLeast(f64),
    /// `ours / baseline` must be at most this.
    RatioAtMost(f64),
    /// Our value itself, in the figure's unit, must be at most this.
    OursAtMost(f64),
}

impl Target {
    /// The target as printed, such as `>= 0.8`; `None` when informative.
    pub fn describe(&self) -> Option<String> {
        match self {
            Target::None => None,
            Target::RatioAtLeast(t) => Some(format!(">= {t}")),
            Target::RatioAtMost(t) | Target::OursAtMost(t) => Some(format!("<= {t}")),
        }
    }

    /// What the target applies to: `"ratio"` or `"ours"`.
    pub fn applies_to(&self) -> Option<&'static str> {
        match self {
            Target::None => None,
            Target::RatioAtLeast(_) | Target::RatioAtMost(_) => Some("ratio"),
            Target::OursAtMost(_) => Some("ours"),
        }
    }

    /// Whether `ours` (with `ratio` to its baseline) meets the target; `None` when informative.
    pub fn met(&self, ours: f64, ratio: f64) -> Option<bool> {
        match *self {
            Target::None => None,
            Target::RatioAtLeast(t) => Some(ratio >= t),
            Target::RatioAtMost(t) => Some(ratio <= t),
            Target::OursAtMost(t) => Some(ours <= t),
        }
    }
}

/// A measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Stable name, such as `local_tell_msgs_per_s`.
    pub name: &'static str,
    /// Unit of `ours` and `baseline`, such as `msgs/s`.
    pub unit: &'static str,
    /// Our value (the median of the rounds).
    pub ours: f64,
    /// The baseline's value, measured the same way in the same run.
    pub baseline: f64,
    /// What the baseline is, in words.
    pub baseline_name: String,
    /// Which way is better.
    pub better: Better,
    /// The target from DESIGN.md.
    pub target: Target,
    /// The runtime both sides ran on.
    pub runtime: &'static str,
    /// The mailbox / channel capacity both sides used, when it matters.
    pub capacity: Option<usize>,
    /// Further facts (percentiles, samples, counts), printed after the standard fields.
    pub extra: Vec<(&'static str, Value)>,
}

impl Figure {
    /// `ours / baseline`.
    pub fn ratio(&self) -> f64 {
        self.ours / self.baseline
    }

    /// Whether the target is met; `None` when the figure is informative.
    pub fn met(&self) -> Option<bool> {
        self.target.met(self.ours, self.ratio())
    }

    /// Adds a further fact.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// The figure as one line of JSON, standard fields first in a fixed order.
    pub fn json_line(&self) -> String {
        let better = match self.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        };
        let mut fields: Vec<(&str, Value)> = vec![
            ("figure", json!(self.name)),
            ("ours", json!(round_sig(self.ours))),
            ("baseline", json!(round_sig(self.baseline))),
            ("ratio", json!(round_sig(self.ratio()))),
            ("unit", json!(self.unit)),
            ("target", json!(self.target.describe())),
            ("target_on", json!(self.target.applies_to())),
            ("met", json!(self.met())),
            ("better", json!(better)),
            ("baseline_name", json!(self.baseline_name)),
            ("runtime", json!(self.runtime)),
            ("capacity", json!(self.capacity)),
        ];
        fields.extend(self.extra.iter().map(|(k, v)| (*k, v.clone())));
        ordered_object(&fields)
    }
}

/// The JSON line for a figure that could not be measured.
pub fn error_line(name: &str, error: &str) -> String {
    ordered_object(&[("figure", json!(name)), ("error", json!(error))])
}

/// Samples as a JSON array, each rounded with [`round_sig`].
pub(crate) fn rounded_samples(samples: &[f64]) -> Value {
    json!(samples.iter().map(|&x| round_sig(x)).collect::<Vec<_>>())
}

/// A JSON object with its keys in the given order (serde_json's map would sort them).
pub(crate) fn ordered_object(fields: &[(&str, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(*k), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// `x` rounded to four significant digits, so the JSON lines stay readable.
pub(crate) fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// How a figure is measured, and against what.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Ours beside a raw baseline.
    Baseline(fn(&RunConfig) -> BenchResult<Figure>),
    /// Ours beside each peer framework.
    Peers(fn(&RunConfig) -> BenchResult<PeerFigure>),
}

/// A measured figure of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// Ours beside a raw baseline.
    Baseline(Figure),
    /// Ours beside each peer framework.
    Peers(PeerFigure),
}

impl Measured {
    /// Its JSON lines: one for a baseline figure, one per peer for a peer figure.
    pub fn json_lines(&self) -> Vec<String> {
        match self {
            Measured::Baseline(f) => vec![f.json_line()],
            Measured::Peers(f) => f.json_lines(),
        }
    }
}

/// A figure the report can measure: a name and the function that measures it.
#[derive(Debug, Clone, Copy)]
pub struct FigureSpec {
    /// The figure's name, as in `--only <name>`.
    pub name: &'static str,
    /// Measures it.
    pub measure: Measure,
}

impl FigureSpec {
    /// A figure named `name`, ours beside a baseline, measured by `measure`.
    pub const fn new(name: &'static str, measure: fn(&RunConfig) -> BenchResult<Figure>) -> Self {
        Self {
            name,
            measure: Measure::Baseline(measure),
        }
    }

    /// A figure named `name`, ours beside the peer frameworks, measured by `measure`.
    pub const fn peers(
        name: &'static str,
        measure: fn(&RunConfig) -> BenchResult<PeerFigure>,
    ) -> Self {
        Self {
            name,
            measure: Measure::Peers(measure),
        }
    }

    /// Measures the figure with the sizes of `config`.
    ///
    /// # Errors
    /// When a scenario fails.
    pub fn run(&self, config: &RunConfig) -> BenchResult<Measured> {
        Ok(match self.measure {
            Measure::Baseline(f) => Measured::Baseline(f(config)?),
            Measure::Peers(f) => Measured::Peers(f(config)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(target: Target) -> Figure {
        Figure {
            name: "x",
            unit: "ns",
            ours: 120.0,
            baseline: 100.0,
            baseline_name: "raw".into(),
            better: Better::Lower,
            target,
            runtime: "rt",
            capacity: Some(8),
            extra: vec![],
        }
    }

    #[test]
    fn ratio_targets_judge_the_ratio() {
        assert_eq!(figure(Target::RatioAtMost(1.3)).met(), Some(true));
        assert_eq!(figure(Target::RatioAtLeast(1.3)).met(), Some(false));
        assert_eq!(figure(Target::OursAtMost(100.0)).met(), Some(false));
        assert_eq!(figure(Target::None).met(), None);
    }

    #[test]
    fn json_line_starts_with_the_figure_name() {
        let line = figure(Target::RatioAtMost(1.3)).with("p50", 3).json_line();
        assert!(line.starts_with(r#"{"figure":"x","ours":120.0,"baseline":100.0,"ratio":1.2,"#));
        let v: Value = serde_json::from_str(&line).expect("valid json");
        assert_eq!(v["target"], "<= 1.3");
        assert_eq!(v["p50"], 3);
    }

    #[test]
    fn round_sig_keeps_four_digits() {
        assert_eq!(round_sig(12_345_678.0), 12_350_000.0);
        assert_eq!(round_sig(0.812_345), 0.8123);
    }
}
