//! The replication owner: records held back until a replica exists, the live publisher pushes (each fed through a
//! channel), the proven holders of each publication (core's `HolderProofs`: claims, challenges, proofs), and the
//! replications this node runs for others. `replication.rs` drives the pushes and replications, `proving.rs` the
//! challenges; everything else asks this owner through its methods.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use kolokol_core::keys::NodeId;
use kolokol_core::record::{InfoHash, RecordId};
use kolokol_core::replication::proof::{DIGEST_BYTES, HolderProofs, ProofConfig, ProofEvent};
use tokio::sync::{Notify, mpsc};

use crate::config::ReplicationConfig;

/// Replications this node runs at once for other publishers.
const MAX_REPLICATING: usize = 4;
/// Events waiting for one publisher push.
const PUSH_EVENTS: usize = 64;

/// What a publisher push hears from the connections.
pub(crate) enum PushEvent {
    Holding(NodeId),
    Declined(NodeId),
}

/// Replication state of the node.
pub(crate) struct Replication {
    pub config: ReplicationConfig,
    state: Mutex<State>,
    /// Wakes the proof driver (`proving.rs`): a claim or an answer arrived.
    proof_wake: Notify,
}

struct State {
    /// Records published here and not announced yet, with when their push began (Unix seconds): the announce
    /// time-out counts from then, across restarts.
    held_back: HashMap<RecordId, u64>,
    /// Live publisher pushes, by infohash.
    pushes: HashMap<InfoHash, mpsc::Sender<PushEvent>>,
    /// Claims, open challenges and the proven holders (at most one per address prefix) of each publication.
    proofs: HolderProofs<NodeId>,
    /// Publications this node is replicating for another publisher.
    replicating: HashSet<InfoHash>,
}

impl Replication {
    pub fn new(config: ReplicationConfig) -> Replication {
        Replication {
            config: config.clone(),
            state: Mutex::new(State {
                held_back: HashMap::new(),
                pushes: HashMap::new(),
                proofs: HolderProofs::new(ProofConfig {
                    deadline_secs: config.proof_deadline.as_secs().max(1),
                    ..ProofConfig::default()
                }),
                replicating: HashSet::new(),
            }),
            proof_wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a record published here still waits for its announcement (and must not be served to peers).
    pub fn is_held_back(&self, id: &RecordId) -> bool {
        self.lock().held_back.contains_key(id)
    }

    /// Peers that proved they hold a full copy of a publication (at most one per address prefix).
    pub fn holders(&self, infohash: &InfoHash) -> Vec<NodeId> {
        self.lock().proofs.holders(infohash)
    }

    /// Forget what is known about a publication (its author was blocked, or its data evicted here).
    pub fn forget(&self, infohash: &InfoHash) {
        self.lock().proofs.forget(infohash);
    }

    /// A connection to `peer` from `ip` opened: its claims may be challenged from now on.
    pub fn peer_connected(&self, peer: NodeId, ip: IpAddr) {
        self.lock().proofs.peer_connected(peer, ip);
    }

    /// The connection to `peer` closed: its open challenges and waiting claims are dropped.
    pub fn peer_gone(&self, peer: &NodeId) {
        self.lock().proofs.peer_gone(peer);
    }

    /// `peer` claims full copies of these publications, which we hold (with their piece stream's length): they
    /// are challenged, and count once proven.
    pub fn claims(&self, peer: &NodeId, claims: &[(InfoHash, u64)]) {
        {
            let mut state = self.lock();
            for (infohash, total) in claims {
                state.proofs.claim(peer, *infohash, *total);
            }
        }
        self.proof_wake.notify_one();
    }

    /// `peer` claims publications we do not hold complete (or would not say we hold): remembered, and challenged if
    /// we come to hold them and may say so ([`Replication::now_held`]).
    pub fn unchecked_claims(&self, peer: &NodeId, infohashes: &[InfoHash]) {
        let mut state = self.lock();
        for infohash in infohashes {
            state.proofs.claim_unchecked(peer, *infohash);
        }
    }

    /// This node now holds `infohash` complete and may say so (a download finished): the claims of it heard before
    /// are challenged.
    pub fn now_held(&self, infohash: InfoHash, total: u64) {
        self.lock().proofs.now_held(infohash, total);
        self.proof_wake.notify_one();
    }

    /// `peer` answered challenge `id`.
    pub fn proof_received(&self, peer: &NodeId, id: u64, digest: [u8; DIGEST_BYTES], now: u64) {
        self.lock().proofs.proof(peer, id, digest, now);
        self.proof_wake.notify_one();
    }

    /// `peer` declined: it does not (or will not) hold this publication.
    pub fn declined(&self, peer: &NodeId, infohash: &InfoHash) {
        self.lock().proofs.declined(peer, infohash);
    }

    /// The next thing the proof driver must do (expired challenges are failed first).
    pub fn poll_proof<R: rand::RngCore>(
        &self,
        now: u64,
        rng: &mut R,
    ) -> Option<ProofEvent<NodeId>> {
        let mut state = self.lock();
        state.proofs.tick(now);
        state.proofs.poll(now, rng)
    }

    /// The digest challenge `id` must be answered with.
    pub fn armed(&self, id: u64, expected: [u8; DIGEST_BYTES]) {
        self.lock().proofs.armed(id, expected);
    }

    /// Our copy could not be read, or the challenge not sent: dropped.
    pub fn abandon(&self, id: u64) {
        self.lock().proofs.abandon(id);
    }

    /// When the next open challenge runs out (Unix seconds).
    pub fn next_proof_timeout(&self) -> Option<u64> {
        self.lock().proofs.next_timeout()
    }

    /// Until a claim or an answer arrives.
    pub async fn proof_woken(&self) {
        self.proof_wake.notified().await
    }

    /// Hold `id` back from `started` on. Returns the receiving end of a new push's events when no push of
    /// `infohash` runs yet (the caller starts one); `None` when one does (it announces both: the same bytes published
    /// again).
    pub fn hold_back(
        &self,
        id: RecordId,
        infohash: InfoHash,
        started: u64,
    ) -> Option<mpsc::Receiver<PushEvent>> {
        let mut state = self.lock();
        state.held_back.insert(id, started);
        if state.pushes.contains_key(&infohash) {
            return None;
        }
        let (events_tx, events) = mpsc::channel(PUSH_EVENTS);
        state.pushes.insert(infohash, events_tx);
        Some(events)
    }

    /// The push of `infohash` is over.
    pub fn end_push(&self, infohash: &InfoHash) {
        self.lock().pushes.remove(infohash);
    }

    /// The publisher push of a publication, if one runs.
    pub fn push_of(&self, infohash: &InfoHash) -> Option<mpsc::Sender<PushEvent>> {
        self.lock().pushes.get(infohash).cloned()
    }

    /// Publications whose push still runs.
    pub fn pushing(&self) -> HashSet<InfoHash> {
        self.lock().pushes.keys().copied().collect()
    }

    /// Every record held back now.
    pub fn held_back_ids(&self) -> Vec<RecordId> {
        self.lock().held_back.keys().copied().collect()
    }

    /// These records are announced: no longer held back.
    pub fn release(&self, ids: &[RecordId]) {
        let mut state = self.lock();
        for id in ids {
            state.held_back.remove(id);
        }
    }

    /// The held-back records in their saved form (see [`parse_held_back`]).
    pub fn held_back_text(&self) -> String {
        format_held_back(&self.lock().held_back)
    }

    /// Take one of the [`MAX_REPLICATING`] slots for replicating `infohash` for another publisher.
    pub fn start_replicating(&self, infohash: InfoHash) -> ReplicationSlot {
        let mut state = self.lock();
        if state.replicating.contains(&infohash) {
            ReplicationSlot::AlreadyRunning
        } else if state.replicating.len() >= MAX_REPLICATING {
            ReplicationSlot::Full
        } else {
            state.replicating.insert(infohash);
            ReplicationSlot::Taken
        }
    }

    pub fn end_replicating(&self, infohash: &InfoHash) {
        self.lock().replicating.remove(infohash);
    }
}

/// The answer of [`Replication::start_replicating`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplicationSlot {
    Taken,
    AlreadyRunning,
    Full,
}

/// The saved form of the held-back records: `ID@STARTED,...`, sorted so that the same state saves the same text.
pub(crate) fn format_held_back(held_back: &HashMap<RecordId, u64>) -> String {
    let mut entries: Vec<String> = held_back
        .iter()
        .map(|(id, started)| format!("{id}@{started}"))
        .collect();
    entries.sort();
    entries.join(",")
}

/// Reads [`format_held_back`]'s text. An entry without a start time (saved by an older version) began `now`; an
/// entry that does not parse (only a damaged settings row has one) is dropped.
pub(crate) fn parse_held_back(saved: &str, now: u64) -> Vec<(RecordId, u64)> {
    saved
        .split(',')
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let (id, started) = match entry.split_once('@') {
                Some((id, started)) => (id, started.parse::<u64>().ok()?),
                None => (entry, now),
            };
            Some((id.parse::<RecordId>().ok()?, started))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> RecordId {
        RecordId::of_signed_bytes(&[n; 8])
    }

    #[test]
    fn held_back_records_keep_their_start_time_through_a_save() {
        let held_back = HashMap::from([(id(1), 1_700_000_000), (id(2), 1_700_000_500)]);
        let saved = format_held_back(&held_back);
        let mut parsed = parse_held_back(&saved, 1_800_000_000);
        parsed.sort();
        let mut expected: Vec<(RecordId, u64)> = held_back.into_iter().collect();
        expected.sort();
        assert_eq!(parsed, expected);
        assert_eq!(parse_held_back("", 5), Vec::new());
    }

    #[test]
    fn an_older_save_without_start_times_begins_now_and_damage_is_dropped() {
        let saved = format!("{},not-an-id,{}@soon,{}@12", id(1), id(2), id(3));
        assert_eq!(parse_held_back(&saved, 99), vec![(id(1), 99), (id(3), 12)]);
    }
}
