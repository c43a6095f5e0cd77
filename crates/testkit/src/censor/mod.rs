//! A censor model for the proxy and bridge tests, after what filters in Russia and China are measured to do in
//! 2021-2026: a filter in the censor namespace of a [`crate::censor_net::CensorNet`] whose rules a test switches on
//! one by one (see [`filter`]), and the pure judgements it applies ([`classify`], [`client_hello`]).

pub mod classify;
pub mod client_hello;
pub mod filter;
pub mod probe;

pub use filter::{Censor, CensorRules, Cidr, FlowRecord, Outcome, Whitelist};
pub use probe::{ProbeEnd, ProbeKind, ProbeRecord};
