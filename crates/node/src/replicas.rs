//! The replication owner: records held back until a replica exists, the live publisher pushes (each fed through a
//! channel), the known holders of each publication, and the replications this node runs for others. `replication.rs`
//! drives the pushes and replications; everything else asks this owner through its methods.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use kolokol_core::keys::NodeId;
use kolokol_core::record::{InfoHash, RecordId};
use tokio::sync::mpsc;

use crate::config::ReplicationConfig;

/// Publications whose holders are remembered (beyond it, new ones are not tracked).
const MAX_TRACKED: usize = 100_000;
/// Holders remembered per publication.
const MAX_HOLDERS: usize = 64;
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
}

#[derive(Default)]
struct State {
    /// Records published here and not announced yet, with when their push began (Unix seconds): the announce
    /// time-out counts from then, across restarts.
    held_back: HashMap<RecordId, u64>,
    /// Live publisher pushes, by infohash.
    pushes: HashMap<InfoHash, mpsc::Sender<PushEvent>>,
    /// Known peers holding a complete copy, by infohash.
    holders: HashMap<InfoHash, Vec<NodeId>>,
    /// Publications this node is replicating for another publisher.
    replicating: HashSet<InfoHash>,
}

impl Replication {
    pub fn new(config: ReplicationConfig) -> Replication {
        Replication {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a record published here still waits for its announcement (and must not be served to peers).
    pub fn is_held_back(&self, id: &RecordId) -> bool {
        self.lock().held_back.contains_key(id)
    }

    /// Known peers that hold a full copy of a publication.
    pub fn holders(&self, infohash: &InfoHash) -> Vec<NodeId> {
        self.lock()
            .holders
            .get(infohash)
            .cloned()
            .unwrap_or_default()
    }

    /// `peer` holds a complete copy; returns the publisher push of that publication, if one runs, to tell it.
    pub fn note_holder(&self, infohash: InfoHash, peer: NodeId) -> Option<mpsc::Sender<PushEvent>> {
        let mut state = self.lock();
        let tracked = state.holders.len();
        if let Some(list) = state.holders.get_mut(&infohash) {
            if !list.contains(&peer) && list.len() < MAX_HOLDERS {
                list.push(peer);
            }
        } else if tracked < MAX_TRACKED {
            state.holders.insert(infohash, vec![peer]);
        }
        state.pushes.get(&infohash).cloned()
    }

    /// Forget what is known about a publication (its author was blocked, or its data evicted here).
    pub fn forget(&self, infohash: &InfoHash) {
        self.lock().holders.remove(infohash);
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
