//! The local scenarios on other actor frameworks, for the report's peer figures (feature
//! `peers`).
//!
//! Every peer runs the same work as ours, through the same timing code
//! ([`time_tells`](crate::local::tell::time_tells),
//! [`time_round_trips`](crate::local::ask::time_round_trips),
//! [`time_spawns`](crate::local::spawn::time_spawns),
//! [`measure_idle`](crate::local::idle::measure_idle)): a counter actor that adds each told
//! value to its total and answers an ask with it, and an idle actor that answers a ping.
//!
//! | peer | runtime | mailbox | tell / ask | spawn returns |
//! | --- | --- | --- | --- | --- |
//! | [`ractor`] | the report's Tokio runtime (2 workers) | unbounded (ractor has no bounded mailbox) | `cast` / `call` | after `pre_start` |
//! | [`kameo`] | the report's Tokio runtime (2 workers) | bounded, our capacity (kameo's default is 64) | `tell` / `ask` | at once; waited on with `wait_for_startup` |
//! | [`actix`] | its own System plus one Arbiter: two single-threaded runtimes | capacity set to ours, but `do_send` ignores it | `do_send` / `send` | at once; waited on from `started` |
//!
//! Each peer is used with its default features, as a user gets it. Our ask carries a time-out
//! (5 s by default); ractor's `call` is made without one, and kameo's and actix's asks have
//! none by default.

pub mod actix;
pub mod kameo;
pub mod ractor;

#[cfg(test)]
mod tests {
    const LOCK: &str = include_str!("../../../Cargo.lock");

    #[test]
    fn reported_versions_are_the_locked_ones() {
        for (name, version) in [
            ("ractor", super::ractor::VERSION),
            ("kameo", super::kameo::VERSION),
            ("actix", super::actix::VERSION),
        ] {
            let entry = format!("name = \"{name}\"\nversion = \"{version}\"\n");
            assert!(LOCK.contains(&entry), "Cargo.lock has no {name} {version}");
        }
    }
}
