//! [`SoakArgs`]: the soak's command line, each default stated next to its flag.

use std::time::Duration;

use clap::Args;

/// The shortest `--kill-every`: a kill, the down detection and the restart take a few
/// seconds, and the next kill should find a cluster that has re-formed.
pub const MIN_KILL_EVERY: Duration = Duration::from_secs(10);
/// The largest rate any one traffic flag accepts, per second.
pub const MAX_RATE: u32 = 100_000;

/// How long, how hard and how often to disturb.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SoakArgs {
    /// How long the traffic runs (`500ms`, `90s`, `10m`, `1h`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// A node is killed with SIGKILL and restarted this often, victims in turn a, b, c
    /// (`0s`: never). No kill starts in the last 20 s of the run.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub kill_every: Duration,
    /// Tells per second to each node's tally.
    #[arg(long, default_value_t = 300)]
    pub rate: u32,
    /// Asks per second to each node's `where@<node>` (one asker per node: an ask waits
    /// for its reply before the next, so a node that does not answer gets fewer).
    #[arg(long, default_value_t = 100)]
    pub ask_rate: u32,
    /// Asks per second to the `echo` group (round-robin over the live nodes).
    #[arg(long, default_value_t = 50)]
    pub group_ask_rate: u32,
    /// Publishes per second on the tally topic (every node subscribes).
    #[arg(long, default_value_t = 50)]
    pub publish_rate: u32,
    /// The time-out of each ask.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub ask_timeout: Duration,
    /// One row of the memory table this often.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// One progress line on stderr this often.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub progress_every: Duration,
}

impl SoakArgs {
    /// Checks what the types cannot.
    ///
    /// # Errors
    /// [`ArgsError`], naming the flag.
    pub fn validate(&self) -> Result<(), ArgsError> {
        let positive = [
            ("--duration", self.duration),
            ("--ask-timeout", self.ask_timeout),
            ("--sample-every", self.sample_every),
            ("--progress-every", self.progress_every),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(ArgsError::Zero { flag });
        }
        if !self.kill_every.is_zero() && self.kill_every < MIN_KILL_EVERY {
            return Err(ArgsError::KillTooOften {
                every: self.kill_every,
            });
        }
        let rates = [
            ("--rate", self.rate),
            ("--ask-rate", self.ask_rate),
            ("--group-ask-rate", self.group_ask_rate),
            ("--publish-rate", self.publish_rate),
        ];
        if let Some(&(flag, rate)) = rates.iter().find(|(_, r)| *r > MAX_RATE) {
            return Err(ArgsError::RateTooHigh { flag, rate });
        }
        Ok(())
    }
}

/// A soak command line that parses but cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    /// A duration that must be positive is zero.
    #[error("{flag} must be more than zero")]
    Zero {
        /// The flag.
        flag: &'static str,
    },
    /// `--kill-every` is below [`MIN_KILL_EVERY`] (and not zero).
    #[error("--kill-every {every:?} is below the minimum of {MIN_KILL_EVERY:?} (0s: never)")]
    KillTooOften {
        /// The value given.
        every: Duration,
    },
    /// A rate is above [`MAX_RATE`].
    #[error("{flag} {rate} is above the maximum of {MAX_RATE} per second")]
    RateTooHigh {
        /// The flag.
        flag: &'static str,
        /// The value given.
        rate: u32,
    },
}

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// It does not start with a whole number.
    #[error("{0:?} is not a duration: it must start with a whole number (e.g. 90s, 10m)")]
    NoNumber(String),
    /// The unit is missing or unknown.
    #[error("{0:?} is not a duration: the unit must be ms, s, m or h (e.g. 90s, 10m)")]
    BadUnit(String),
    /// It is too long to be represented.
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// Parses `<whole number><unit>`, the unit one of `ms`, `s`, `m`, `h` (`500ms`, `90s`,
/// `10m`, `1h`).
///
/// # Errors
/// [`DurationError`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| DurationError::NoNumber(text.to_string()))?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DurationError::BadUnit(text.to_string())),
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| DurationError::TooLong(text.to_string()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        soak: SoakArgs,
    }

    fn parse(args: &[&str]) -> Result<SoakArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("soak").chain(args.iter().copied())).map(|c| c.soak)
    }

    #[test]
    fn durations_take_ms_s_m_and_h() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
    }

    #[test]
    fn a_duration_needs_a_number_and_a_known_unit() {
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::BadUnit(_))
        ));
        assert!(matches!(
            parse_duration("10d"),
            Err(DurationError::BadUnit(_))
        ));
        assert!(matches!(
            parse_duration("m"),
            Err(DurationError::NoNumber(_))
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::NoNumber(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999h"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn the_defaults_are_a_ten_minute_run_with_a_kill_a_minute() {
        let args = parse(&[]).expect("defaults parse");
        assert_eq!(args.duration, Duration::from_secs(600));
        assert_eq!(args.kill_every, Duration::from_secs(60));
        assert_eq!(args.validate(), Ok(()));
    }

    #[test]
    fn flags_override_the_defaults() {
        let args = parse(&["--duration", "90s", "--kill-every", "0s", "--rate", "10"])
            .expect("valid flags");
        assert_eq!(args.duration, Duration::from_secs(90));
        assert!(args.kill_every.is_zero());
        assert_eq!(args.rate, 10);
        assert_eq!(args.validate(), Ok(()));
    }

    #[test]
    fn a_bad_duration_is_refused_at_parse_time() {
        assert!(parse(&["--duration", "ten minutes"]).is_err());
    }

    #[test]
    fn kills_closer_than_the_minimum_are_refused() {
        let args = parse(&["--kill-every", "2s"]).expect("parses");
        assert!(matches!(
            args.validate(),
            Err(ArgsError::KillTooOften { .. })
        ));
    }

    #[test]
    fn a_zero_duration_and_a_huge_rate_are_refused() {
        let zero = parse(&["--duration", "0s"]).expect("parses");
        assert_eq!(zero.validate(), Err(ArgsError::Zero { flag: "--duration" }));
        let huge = parse(&["--rate", "1000000"]).expect("parses");
        assert!(matches!(
            huge.validate(),
            Err(ArgsError::RateTooHigh { flag: "--rate", .. })
        ));
    }
}
