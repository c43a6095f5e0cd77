//! The records that exist in a simulated network, and which ones each node holds.

use std::collections::BTreeMap;
use std::time::Duration;

use kolokol_core::reconcile::{Item, VecStorage};
use kolokol_core::record::RecordId;

/// Unix time (seconds) at virtual time zero.
pub const UNIX_BASE: u64 = 1_750_000_000;

/// Why a record exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// Held by every node from the start.
    Initial,
    /// Published during a run to measure propagation.
    Probe,
    /// Published in one half of a partition (0 or 1).
    Partition(u8),
    /// Published by a spamming node.
    Spam,
}

/// One record.
#[derive(Clone, Debug)]
pub struct RecordMeta {
    /// Its id.
    pub id: RecordId,
    /// Its `created` time in unix seconds.
    pub created: u64,
    /// The publishing node.
    pub author: u32,
    /// Virtual time of publication.
    pub published_at: Duration,
    /// Why it exists.
    pub kind: RecordKind,
}

/// All records, addressed by a dense index.
#[derive(Default)]
pub struct Records {
    metas: Vec<RecordMeta>,
    by_id: BTreeMap<RecordId, u32>,
    /// Bytes of record, announce and request messages attributed to each record, summed over all nodes.
    pub gossip_bytes: Vec<u64>,
}

impl Records {
    /// Adds a record; its id is derived from the seed and its index.
    pub fn add(
        &mut self,
        seed: u64,
        created: u64,
        author: u32,
        published_at: Duration,
        kind: RecordKind,
    ) -> u32 {
        let index = self.metas.len() as u32;
        let mut bytes = seed.to_le_bytes().to_vec();
        bytes.extend_from_slice(&index.to_le_bytes());
        let id = RecordId::of_signed_bytes(&bytes);
        self.metas.push(RecordMeta {
            id,
            created,
            author,
            published_at,
            kind,
        });
        self.by_id.insert(id, index);
        self.gossip_bytes.push(0);
        index
    }

    /// The record at `index`.
    pub fn get(&self, index: u32) -> &RecordMeta {
        &self.metas[index as usize]
    }

    /// The index of a record id, if it exists.
    pub fn index_of(&self, id: &RecordId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// All records.
    pub fn iter(&self) -> impl Iterator<Item = &RecordMeta> {
        self.metas.iter()
    }

    /// The reconciliation item of a record.
    pub fn item(&self, index: u32) -> Item {
        let meta = self.get(index);
        Item::new(meta.created, meta.id)
    }
}

/// The records one node holds: a bitset for membership, a list for building its reconciliation storage, and
/// the storage itself, built when a session needs it and dropped when the set changes.
#[derive(Clone, Debug, Default)]
pub struct Holdings {
    bits: Vec<u64>,
    list: Vec<u32>,
    storage: Option<VecStorage>,
}

impl Holdings {
    /// Whether the record is held.
    pub fn contains(&self, index: u32) -> bool {
        self.bits
            .get(index as usize / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// Adds a record; returns whether it was new.
    pub fn insert(&mut self, index: u32) -> bool {
        let word = index as usize / 64;
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        let bit = 1u64 << (index % 64);
        if self.bits[word] & bit != 0 {
            return false;
        }
        self.bits[word] |= bit;
        self.list.push(index);
        self.storage = None;
        true
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The held records' indices, in arrival order.
    pub fn indices(&self) -> &[u32] {
        &self.list
    }

    /// The reconciliation storage over the held records.
    pub fn storage(&mut self, records: &Records) -> &VecStorage {
        let list = &self.list;
        self.storage.get_or_insert_with(|| {
            // Sim records never use the reserved timestamp, so building cannot fail; fall back to empty.
            VecStorage::from_items(list.iter().map(|i| records.item(*i))).unwrap_or_default()
        })
    }

    /// Drops the cached storage (to save memory when no session runs).
    pub fn drop_storage(&mut self) {
        self.storage = None;
    }
}
