//! One figure measured on ours and on each peer framework in the same run: our value, theirs,
//! and their ratio, one JSON line per peer.

use serde_json::{Value, json};

use super::figure::{Better, ordered_object, round_sig};

/// One peer framework's value for a [`PeerFigure`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerValue {
    /// The framework's crate name, such as `ractor`.
    pub peer: &'static str,
    /// Its release, as locked in `Cargo.lock`.
    pub version: &'static str,
    /// Its value (the median of the rounds), in the figure's unit.
    pub theirs: f64,
    /// How it ran, in words: runtime, mailbox, what its spawn or send promises.
    pub setup: String,
    /// Further facts about this peer's run (samples, another layout's value).
    pub extra: Vec<(&'static str, Value)>,
}

impl PeerValue {
    /// Adds a further fact.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }
}

/// A figure measured on ours and on each peer, interleaved in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerFigure {
    /// Stable name, such as `peer_tell_1_sender_msgs_per_s`.
    pub name: &'static str,
    /// Unit of every value, such as `msgs/s`.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
    /// Our value (the median of the rounds).
    pub ours: f64,
    /// The runtime our side ran on.
    pub runtime: &'static str,
    /// Our mailbox capacity, and the peers' where they have one.
    pub capacity: Option<usize>,
    /// Each peer's value.
    pub peers: Vec<PeerValue>,
    /// Facts shared by every peer's line (sizes, rounds, our samples).
    pub extra: Vec<(&'static str, Value)>,
}

impl PeerFigure {
    /// Adds a fact shared by every peer's line.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// `ours / theirs` for `peer`.
    pub fn ratio(&self, peer: &PeerValue) -> f64 {
        self.ours / peer.theirs
    }

    /// Whether ours is better than `peer`'s, as the figure's [`Better`] says.
    pub fn ours_ahead(&self, peer: &PeerValue) -> bool {
        match self.better {
            Better::Higher => self.ours > peer.theirs,
            Better::Lower => self.ours < peer.theirs,
        }
    }

    /// One JSON line per peer, standard fields first in a fixed order, then the shared facts,
    /// then the peer's own.
    pub fn json_lines(&self) -> Vec<String> {
        let better = match self.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        };
        self.peers
            .iter()
            .map(|p| {
                let mut fields: Vec<(&str, Value)> = vec![
                    ("figure", json!(self.name)),
                    ("peer", json!(p.peer)),
                    ("ours", json!(round_sig(self.ours))),
                    ("theirs", json!(round_sig(p.theirs))),
                    ("ratio", json!(round_sig(self.ratio(p)))),
                    ("unit", json!(self.unit)),
                    ("better", json!(better)),
                    ("ours_ahead", json!(self.ours_ahead(p))),
                    ("peer_version", json!(p.version)),
                    ("peer_setup", json!(p.setup)),
                    ("runtime", json!(self.runtime)),
                    ("capacity", json!(self.capacity)),
                ];
                fields.extend(self.extra.iter().map(|(k, v)| (*k, v.clone())));
                fields.extend(p.extra.iter().map(|(k, v)| (*k, v.clone())));
                ordered_object(&fields)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure() -> PeerFigure {
        let peer = |peer, theirs| PeerValue {
            peer,
            version: "1.0.0",
            theirs,
            setup: "tokio".into(),
            extra: vec![],
        };
        PeerFigure {
            name: "peer_x",
            unit: "msgs/s",
            better: Better::Higher,
            ours: 200.0,
            runtime: "rt",
            capacity: Some(8),
            peers: vec![peer("a", 100.0), peer("b", 400.0).with("note", 1)],
            extra: vec![("rounds", json!(3))],
        }
    }

    #[test]
    fn one_json_line_per_peer_with_ours_theirs_and_ratio() {
        let lines = figure().json_lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(
            r#"{"figure":"peer_x","peer":"a","ours":200.0,"theirs":100.0,"ratio":2.0,"#
        ));
        let b: Value = serde_json::from_str(&lines[1]).expect("valid json");
        assert_eq!(b["ratio"], 0.5);
        assert_eq!(b["ours_ahead"], false);
        assert_eq!(
            (b["rounds"].clone(), b["note"].clone()),
            (json!(3), json!(1))
        );
    }

    #[test]
    fn ours_ahead_follows_which_way_is_better() {
        let mut f = figure();
        assert!(f.ours_ahead(&f.peers[0]));
        f.better = Better::Lower;
        assert!(!f.ours_ahead(&f.peers[0]) && f.ours_ahead(&f.peers[1]));
    }
}
