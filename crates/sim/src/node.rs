//! One simulated node: what the real node will hold (its catalog, the record policy state machine, reconciliation
//! sessions, its connections), without any I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use kolokol_core::policy::{PolicyConfig, RecordPolicy};
use kolokol_core::reconcile::{Initiator, Responder};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::records::Holdings;

/// An open connection as one end sees it.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    /// Unique id, so that messages of a closed connection are not delivered on a newer one.
    pub id: u64,
    /// Whether this end dialed.
    pub outbound: bool,
    /// When it opened.
    pub since: Duration,
}

/// Kinds of traffic, for accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// Whole records pushed, or sent after an announcement.
    RecordPush,
    /// Whole records sent because a reconciliation found them missing.
    RecordReconcile,
    /// Record id announcements.
    Announce,
    /// Requests for records.
    Want,
    /// Reconciliation frames (and the message that ends a session).
    Reconcile,
    /// Connection handshakes.
    Handshake,
}

impl Traffic {
    /// Every kind, in display order.
    pub const ALL: [Traffic; 6] = [
        Traffic::RecordPush,
        Traffic::RecordReconcile,
        Traffic::Announce,
        Traffic::Want,
        Traffic::Reconcile,
        Traffic::Handshake,
    ];

    /// Position in [`Traffic::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Traffic::RecordPush => "records (push)",
            Traffic::RecordReconcile => "records (reconcile)",
            Traffic::Announce => "announcements",
            Traffic::Want => "requests",
            Traffic::Reconcile => "reconcile frames",
            Traffic::Handshake => "handshakes",
        }
    }
}

/// Byte counters per traffic kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficCounters(pub [u64; 6]);

impl TrafficCounters {
    /// Adds `bytes` of `kind`.
    pub fn add(&mut self, kind: Traffic, bytes: u64) {
        self.0[kind.index()] += bytes;
    }

    /// All kinds together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Bytes of one kind.
    pub fn get(&self, kind: Traffic) -> u64 {
        self.0[kind.index()]
    }

    /// `self - earlier`, per kind.
    pub fn since(&self, earlier: &TrafficCounters) -> TrafficCounters {
        let mut out = [0; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.0[i].saturating_sub(earlier.0[i]);
        }
        TrafficCounters(out)
    }
}

/// A simulated node.
pub struct SimNode {
    /// Whether it is running.
    pub online: bool,
    /// The records it holds (kept while offline: the catalog is on disk).
    pub held: Holdings,
    /// The record policy (recreated at every start: it is in-memory state).
    pub policy: RecordPolicy<u32, StdRng>,
    /// The wake-up time the policy asked for.
    pub timer_at: Option<Duration>,
    /// Open connections by peer.
    pub conns: BTreeMap<u32, Conn>,
    /// Dials in flight.
    pub dialing: BTreeMap<u32, Duration>,
    /// Records requested and not yet arrived, with the peer asked and the time after which they may be
    /// requested again: one request at a time per record, whether gossip or reconciliation asks.
    pub inflight: BTreeMap<u32, (u32, Duration)>,
    /// Sessions this node started, by peer.
    pub initiators: BTreeMap<u32, Initiator>,
    /// Sessions peers started with this node, by peer.
    pub responders: BTreeMap<u32, Responder>,
    /// Which half of a partition it is in.
    pub half: u8,
    /// Whether it floods records.
    pub spammer: bool,
    /// Bytes it sent.
    pub sent: TrafficCounters,
}

impl SimNode {
    /// A node that is offline until started.
    pub fn new(config: &PolicyConfig, seed: u64) -> anyhow::Result<Self> {
        Ok(SimNode {
            online: false,
            held: Holdings::default(),
            policy: RecordPolicy::new(config.clone(), StdRng::seed_from_u64(seed))?,
            timer_at: None,
            conns: BTreeMap::new(),
            dialing: BTreeMap::new(),
            inflight: BTreeMap::new(),
            initiators: BTreeMap::new(),
            responders: BTreeMap::new(),
            half: 0,
            spammer: false,
            sent: TrafficCounters::default(),
        })
    }

    /// Outbound connections plus dials in flight.
    pub fn outbound_count(&self) -> usize {
        self.conns.values().filter(|c| c.outbound).count() + self.dialing.len()
    }

    /// Inbound connections.
    pub fn inbound_count(&self) -> usize {
        self.conns.values().filter(|c| !c.outbound).count()
    }
}
