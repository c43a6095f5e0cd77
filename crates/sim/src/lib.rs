//! kolokol-sim: a deterministic many-node simulator over the real core state machines
//! ([`kolokol_core::reconcile`] and [`kolokol_core::policy`], the record policy the node runs).
//!
//! Virtual time comes from one event queue ([`queue::EventQueue`]); every random choice comes from one seeded
//! generator, and all state is kept in ordered maps, so a configuration and a seed give one exact run. The
//! [`world::World`] models links (latency, bandwidth, loss as resend delay), a random overlay of target degree,
//! churn, partitions and spamming nodes; `protocol.rs` is the glue a real node will have between the wire and
//! the state machines. [`scenario`] runs the measured scenarios and prints their figures. [`anonymity`] runs
//! core's stem machine ([`kolokol_core::stem`]) with spies and measures how well they find publishers.

pub mod anonymity;
pub mod config;
pub mod metrics;
pub mod node;
mod protocol;
pub mod queue;
pub mod records;
pub mod replication;
pub mod scenario;
pub mod world;

pub use config::SimConfig;
pub use scenario::{
    PartitionReport, PartitionScenario, ReachReport, ReachScenario, run_partition, run_reach,
};
pub use world::World;
