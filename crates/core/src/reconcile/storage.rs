//! Where a session reads the local set: the [`ReconcileStorage`] trait and [`VecStorage`], a sorted in-memory
//! implementation with running sums.

use std::convert::Infallible;
use std::ops::ControlFlow;

use super::fingerprint::{Accumulator, Fingerprint};
use super::item::{Bound, INFINITY_TIMESTAMP, Item};
use crate::record::RecordId;

/// Read access to the local set, sorted by (timestamp, id), addressed by index.
///
/// Each id appears at most once (a record id determines the record, and so its timestamp): a session refuses a
/// message listing an id twice, so a set holding one id under two timestamps cannot be reconciled.
///
/// A session holds no indices between messages (only bounds), so the set may grow between two calls into the
/// session; it must not change *during* one call. Implementations: [`VecStorage`] here; the node can implement it
/// over an in-memory index of its catalog, or over a SQLite snapshot (one read transaction per call).
pub trait ReconcileStorage {
    /// Why a read failed (I/O for a database; [`Infallible`] in memory).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Number of items.
    fn size(&self) -> Result<usize, Self::Error>;

    /// The item at `index` (`index < size`).
    fn item(&self, index: usize) -> Result<Item, Self::Error>;

    /// The first index in `from..to` whose item is not below `bound`, or `to` if there is none.
    /// `from <= to <= size`.
    fn lower_bound(&self, from: usize, to: usize, bound: &Bound) -> Result<usize, Self::Error> {
        let (mut lo, mut hi) = (from, to);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if bound.is_above(&self.item(mid)?) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The fingerprint of the items at `from..to`.
    fn fingerprint(&self, from: usize, to: usize) -> Result<Fingerprint, Self::Error>;

    /// Calls `visit` on the items at `from..to` in order until it breaks.
    fn for_each(
        &self,
        from: usize,
        to: usize,
        visit: &mut dyn FnMut(&Item) -> ControlFlow<()>,
    ) -> Result<(), Self::Error> {
        for index in from..to {
            if visit(&self.item(index)?).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Why an item cannot be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The timestamp is the one reserved for the infinity bound.
    #[error("timestamp {INFINITY_TIMESTAMP} is reserved")]
    ReservedTimestamp,
}

/// A sorted vector of items with running id sums: fingerprints in O(1), lookups in O(log n), insertion in O(n).
///
/// Good for catalogs up to a few hundred thousand records (100,000 items take about 7 MB). Build it once with
/// [`VecStorage::from_items`] (O(n log n)), then [`VecStorage::insert`] what arrives and
/// [`VecStorage::remove`] what is purged.
#[derive(Clone, Debug)]
pub struct VecStorage {
    items: Vec<Item>,
    /// `sums[i]` is the sum of the ids of `items[..i]`; one longer than `items`.
    sums: Vec<Accumulator>,
}

impl Default for VecStorage {
    fn default() -> Self {
        VecStorage {
            items: Vec::new(),
            sums: vec![Accumulator::ZERO],
        }
    }
}

impl VecStorage {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding `items` (in any order; exact duplicates are kept once).
    pub fn from_items(items: impl IntoIterator<Item = Item>) -> Result<Self, StorageError> {
        let mut items: Vec<Item> = items.into_iter().collect();
        if items.iter().any(|i| i.timestamp == INFINITY_TIMESTAMP) {
            return Err(StorageError::ReservedTimestamp);
        }
        items.sort_unstable();
        items.dedup();
        let mut storage = VecStorage {
            sums: Vec::with_capacity(items.len() + 1),
            items,
        };
        storage.recompute_sums_from(0);
        Ok(storage)
    }

    /// Adds an item; returns whether it was new.
    pub fn insert(&mut self, item: Item) -> Result<bool, StorageError> {
        if item.timestamp == INFINITY_TIMESTAMP {
            return Err(StorageError::ReservedTimestamp);
        }
        match self.items.binary_search(&item) {
            Ok(_) => Ok(false),
            Err(pos) => {
                self.items.insert(pos, item);
                self.recompute_sums_from(pos);
                Ok(true)
            }
        }
    }

    /// Removes an item (a purged record); returns whether it was there.
    pub fn remove(&mut self, item: &Item) -> bool {
        match self.items.binary_search(item) {
            Ok(pos) => {
                self.items.remove(pos);
                self.recompute_sums_from(pos);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether the set holds `item`.
    pub fn contains(&self, item: &Item) -> bool {
        self.items.binary_search(item).is_ok()
    }

    /// The items in order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn recompute_sums_from(&mut self, pos: usize) {
        self.sums.truncate(pos + 1);
        if self.sums.is_empty() {
            self.sums.push(Accumulator::ZERO);
        }
        let mut sum = self.sums[pos];
        for item in &self.items[pos..] {
            sum.add(item);
            self.sums.push(sum);
        }
    }
}

impl ReconcileStorage for VecStorage {
    type Error = Infallible;

    fn size(&self) -> Result<usize, Infallible> {
        Ok(self.items.len())
    }

    fn item(&self, index: usize) -> Result<Item, Infallible> {
        // Sessions only ask for indices below `len`; the fallback keeps a caller bug from panicking.
        debug_assert!(index < self.items.len(), "index {index} out of range");
        Ok(self.items.get(index).copied().unwrap_or(Item {
            timestamp: 0,
            id: RecordId([0; 32]),
        }))
    }

    fn lower_bound(&self, from: usize, to: usize, bound: &Bound) -> Result<usize, Infallible> {
        let to = to.min(self.items.len());
        let from = from.min(to);
        Ok(from + self.items[from..to].partition_point(|item| bound.is_above(item)))
    }

    fn fingerprint(&self, from: usize, to: usize) -> Result<Fingerprint, Infallible> {
        let to = to.min(self.items.len());
        let from = from.min(to);
        Ok(self.sums[to]
            .minus(&self.sums[from])
            .fingerprint((to - from) as u64))
    }

    fn for_each(
        &self,
        from: usize,
        to: usize,
        visit: &mut dyn FnMut(&Item) -> ControlFlow<()>,
    ) -> Result<(), Infallible> {
        let to = to.min(self.items.len());
        let from = from.min(to);
        for item in &self.items[from..to] {
            if visit(item).is_break() {
                break;
            }
        }
        Ok(())
    }
}
