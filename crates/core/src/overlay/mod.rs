//! The kolokol peer-set policy: which kolokol nodes to connect to, and when.
//!
//! A node learns addresses of other kolokol nodes from several places (the DHT rendezvous, LAN multicast, the peer
//! cache saved on the last run, the user, other peers) and keeps a bounded number of encrypted connections to
//! them. [`Overlay`] is the pure state machine that decides this; the node drives it:
//!
//! - every address it learns goes to [`Overlay::heard_of`];
//! - [`Overlay::dials`] says which candidates to dial now (and marks them as being dialed);
//! - the outcome of each dial goes back as [`Overlay::outbound_connected`] or [`Overlay::dial_failed`];
//! - an accepted inbound connection asks [`Overlay::inbound_connected`] whether it may stay;
//! - a closed connection is reported with [`Overlay::disconnected`];
//! - [`Overlay::next_wakeup`] tells when calling [`Overlay::dials`] again could give something new.
//!
//! Time is passed in as a [`Duration`] since any fixed origin the driver picks (for example the node's start):
//! this module reads no clock and has no randomness source of its own (the tie-break between equally good
//! candidates is keyed by a seed given to [`Overlay::new`], so different nodes spread their dials differently).
//!
//! # Invariants (checked by the property tests)
//!
//! - Outbound connections plus dials in flight never exceed [`OverlayConfig::max_outbound`]; inbound
//!   connections never exceed [`OverlayConfig::max_inbound`]; dials in flight never exceed
//!   [`OverlayConfig::max_dials_in_flight`].
//! - At most [`OverlayConfig::max_candidates`] candidates are kept, and at most
//!   [`OverlayConfig::max_candidates_per_ip`] per IP address (loopback exempt), whatever is fed in: memory is
//!   bounded under a flood of addresses.
//! - When connections close, the next [`Overlay::dials`] refills the peer set from the remaining candidates.
//! - A candidate that fails is retried after an exponentially growing delay, and forgotten after
//!   [`OverlayConfig::max_failures`] failures in a row (unless the user gave it).

mod state;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

use std::time::Duration;

pub use state::{Overlay, OverlayCounts};

/// Where an address was learned. The order is the preference: earlier variants are dialed first and are never
/// pushed out of a full candidate set by later ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Given by the user (`peer add`, configuration). Never forgotten after failures.
    User,
    /// Saved by this node on an earlier run after a successful connection.
    Cache,
    /// Heard on the local network by multicast.
    Lan,
    /// Told by a connected kolokol peer.
    Exchange,
    /// Found on the DHT rendezvous infohash.
    Dht,
}

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We dialed it.
    Outbound,
    /// It dialed us.
    Inbound,
}

/// Why [`Overlay::heard_of`] did not keep an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Port 0, or an unspecified, multicast or broadcast IP: nothing can be dialed there.
    #[error("address cannot be dialed (port 0, unspecified, multicast or broadcast)")]
    Unusable,
    /// The address or node id is this node's own.
    #[error("address or node id is this node's own")]
    OwnNode,
    /// The set is full of candidates that are at least as good.
    #[error("candidate set is full")]
    Full,
    /// Too many candidates already share this IP address.
    #[error("too many candidates with this IP address")]
    TooManyForIp,
}

/// Why a connection may not stay in the peer set; the driver closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectRefusal {
    /// The remote is this node itself (its address is remembered and never dialed again).
    #[error("connected to ourselves")]
    OwnNode,
    /// A connection to this node already exists.
    #[error("already connected to this node")]
    AlreadyConnected,
    /// [`OverlayConfig::max_inbound`] inbound connections are open.
    #[error("inbound connection limit reached")]
    InboundFull,
    /// [`OverlayConfig::max_outbound`] outbound connections are open.
    #[error("outbound connection limit reached")]
    OutboundFull,
}

/// Why an [`OverlayConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverlayConfigError {
    #[error("{field} must be at least 1")]
    Zero { field: &'static str },
    #[error("min_outbound ({min}) is larger than max_outbound ({max})")]
    MinAboveMax { min: usize, max: usize },
    #[error("backoff_base ({base:?}) must be positive and not larger than backoff_max ({max:?})")]
    Backoff { base: Duration, max: Duration },
    #[error("{field} is {value}, above the ceiling {ceiling}")]
    AboveCeiling {
        field: &'static str,
        value: usize,
        ceiling: usize,
    },
}

/// Largest value accepted for [`OverlayConfig::max_candidates`]: the set is scanned linearly on every dial
/// decision, so it must stay small.
pub const MAX_CANDIDATES_CEILING: usize = 4096;
/// Largest value accepted for the connection caps.
pub const MAX_CONNECTIONS_CEILING: usize = 1024;

/// Parameters of the peer-set policy. [`Default`] gives the values a node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayConfig {
    /// Connections (both directions) the node tries to keep open: 8.
    pub target_degree: usize,
    /// Outbound connections kept even when inbound ones already reach the target degree: 4. Connections we
    /// chose ourselves cannot be monopolised by whoever dials us, which makes eclipsing a node harder.
    pub min_outbound: usize,
    /// Most outbound connections (dials in flight count too): 8.
    pub max_outbound: usize,
    /// Most inbound connections: 32. Above the target degree so that nodes which are reachable serve those
    /// which are not.
    pub max_inbound: usize,
    /// Most dials at once: 4.
    pub max_dials_in_flight: usize,
    /// Most candidate addresses remembered: 512.
    pub max_candidates: usize,
    /// Most candidates sharing one IP address, loopback excepted: 4. Limits how much of the set one host can
    /// fill.
    pub max_candidates_per_ip: usize,
    /// Delay before retrying a candidate after its first failure; doubled for each further failure: 10 s.
    pub backoff_base: Duration,
    /// Longest retry delay: 30 min.
    pub backoff_max: Duration,
    /// Failures in a row after which a candidate (not given by the user) is forgotten: 8.
    pub max_failures: u32,
    /// A dial not reported back within this time counts as failed: 60 s.
    pub dial_timeout: Duration,
    /// A connection that closes sooner than this after opening counts as a failure of its address (so a peer
    /// that accepts and hangs up at once is backed off): 60 s.
    pub stable_after: Duration,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        OverlayConfig {
            target_degree: 8,
            min_outbound: 4,
            max_outbound: 8,
            max_inbound: 32,
            max_dials_in_flight: 4,
            max_candidates: 512,
            max_candidates_per_ip: 4,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(30 * 60),
            max_failures: 8,
            dial_timeout: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
        }
    }
}

impl OverlayConfig {
    /// Checks that the parameters make sense together.
    pub fn validate(&self) -> Result<(), OverlayConfigError> {
        let positive = [
            ("target_degree", self.target_degree),
            ("max_outbound", self.max_outbound),
            ("max_dials_in_flight", self.max_dials_in_flight),
            ("max_candidates", self.max_candidates),
            ("max_candidates_per_ip", self.max_candidates_per_ip),
            ("max_failures", self.max_failures as usize),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(OverlayConfigError::Zero { field });
            }
        }
        let ceilings = [
            ("target_degree", self.target_degree, MAX_CONNECTIONS_CEILING),
            ("max_outbound", self.max_outbound, MAX_CONNECTIONS_CEILING),
            ("max_inbound", self.max_inbound, MAX_CONNECTIONS_CEILING),
            (
                "max_candidates",
                self.max_candidates,
                MAX_CANDIDATES_CEILING,
            ),
        ];
        for (field, value, ceiling) in ceilings {
            if value > ceiling {
                return Err(OverlayConfigError::AboveCeiling {
                    field,
                    value,
                    ceiling,
                });
            }
        }
        if self.min_outbound > self.max_outbound {
            return Err(OverlayConfigError::MinAboveMax {
                min: self.min_outbound,
                max: self.max_outbound,
            });
        }
        if self.backoff_base.is_zero() || self.backoff_base > self.backoff_max {
            return Err(OverlayConfigError::Backoff {
                base: self.backoff_base,
                max: self.backoff_max,
            });
        }
        Ok(())
    }
}
