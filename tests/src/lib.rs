//! Cross-crate and multi-process integration tests of the actor framework.
//!
//! The tests live under `tests/tests/`; helpers shared by them (node processes, fault
//! injection) live in this library as they are added.
