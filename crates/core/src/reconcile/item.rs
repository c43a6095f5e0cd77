//! What is reconciled ([`Item`]: a timestamp and a record id) and where ranges begin and end ([`Bound`]).

use std::cmp::Ordering;

use crate::record::RecordId;

/// Length of a record id, and the longest id prefix a [`Bound`] may carry.
pub const ID_BYTES: usize = 32;

/// The timestamp reserved for the "infinity" bound that closes the last range. No item may carry it.
pub const INFINITY_TIMESTAMP: u64 = u64::MAX;

/// One element of a reconciled set: a record's creation time and its id.
///
/// Items are ordered by timestamp, then by id bytes (lexically), which is the order every range refers to.
/// Ordering by time first keeps recent records (those most likely to differ between two nodes) together at the
/// end, so their differences are found in few, small ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// The record's `created` time (unix seconds). Must be below [`INFINITY_TIMESTAMP`].
    pub timestamp: u64,
    /// The record id.
    pub id: RecordId,
}

impl Item {
    /// An item; callers storing it must check that `timestamp` is not [`INFINITY_TIMESTAMP`]
    /// ([`super::VecStorage`] does).
    pub fn new(timestamp: u64, id: RecordId) -> Self {
        Item { timestamp, id }
    }
}

/// A point in the (timestamp, id) order: an inclusive lower or exclusive upper end of a range.
///
/// A bound is a timestamp and an id prefix of 0 to 32 bytes; the missing bytes are taken as zero. The shortest
/// prefix that separates two neighbouring items is what goes on the wire (see [`Bound::between`]), so a canonical
/// prefix never ends with a zero byte. [`Bound::INFINITY`] is above every item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bound {
    timestamp: u64,
    prefix_len: u8,
    /// The prefix followed by zero bytes.
    id: [u8; ID_BYTES],
}

impl Bound {
    /// The lowest bound: timestamp 0, empty prefix. The implicit lower end of the first range of every message.
    pub const ZERO: Bound = Bound {
        timestamp: 0,
        prefix_len: 0,
        id: [0; ID_BYTES],
    };

    /// The bound above every item: the upper end of the last range.
    pub const INFINITY: Bound = Bound {
        timestamp: INFINITY_TIMESTAMP,
        prefix_len: 0,
        id: [0; ID_BYTES],
    };

    /// A bound from a timestamp and an id prefix; `None` when the prefix is longer than [`ID_BYTES`].
    pub fn new(timestamp: u64, prefix: &[u8]) -> Option<Bound> {
        if prefix.len() > ID_BYTES {
            return None;
        }
        let mut id = [0u8; ID_BYTES];
        id[..prefix.len()].copy_from_slice(prefix);
        Some(Bound {
            timestamp,
            prefix_len: prefix.len() as u8,
            id,
        })
    }

    /// The shortest bound `b` with `prev < b <= next`, for two items with `prev < next`.
    ///
    /// With different timestamps that is `next`'s timestamp alone; otherwise `next`'s id up to and including the
    /// first byte where the two ids differ (that byte is larger in `next`, so it is never zero).
    pub fn between(prev: &Item, next: &Item) -> Bound {
        if prev.timestamp != next.timestamp {
            return Bound {
                timestamp: next.timestamp,
                prefix_len: 0,
                id: [0; ID_BYTES],
            };
        }
        let shared = prev
            .id
            .0
            .iter()
            .zip(next.id.0.iter())
            .take_while(|(a, b)| a == b)
            .count();
        // Distinct items with one timestamp have distinct ids, so `shared < ID_BYTES`; `min` keeps equal
        // inputs (a caller error) from indexing out of range.
        let len = (shared + 1).min(ID_BYTES);
        let mut id = [0u8; ID_BYTES];
        id[..len].copy_from_slice(&next.id.0[..len]);
        Bound {
            timestamp: next.timestamp,
            prefix_len: len as u8,
            id,
        }
    }

    /// The timestamp.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The id prefix as carried on the wire.
    pub fn prefix(&self) -> &[u8] {
        &self.id[..usize::from(self.prefix_len)]
    }

    /// Whether this is [`Bound::INFINITY`] (any bound with the reserved timestamp).
    pub fn is_infinity(&self) -> bool {
        self.timestamp == INFINITY_TIMESTAMP
    }

    /// Whether `item` lies below this bound (a range's upper bound is exclusive).
    pub fn is_above(&self, item: &Item) -> bool {
        self.is_infinity() || (item.timestamp, &item.id.0) < (self.timestamp, &self.id)
    }

    /// Compares positions in the order; two bounds with the same padded id are equal whatever their prefix length.
    pub fn position_cmp(&self, other: &Bound) -> Ordering {
        match (self.is_infinity(), other.is_infinity()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => (self.timestamp, &self.id).cmp(&(other.timestamp, &other.id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ts: u64, first: u8, second: u8) -> Item {
        let mut id = [0u8; 32];
        id[0] = first;
        id[1] = second;
        id[31] = 7;
        Item::new(ts, RecordId(id))
    }

    #[test]
    fn between_uses_timestamp_alone_when_timestamps_differ() {
        let b = Bound::between(&item(5, 9, 9), &item(6, 1, 1));
        assert_eq!(b.timestamp(), 6);
        assert!(b.prefix().is_empty());
        assert!(b.is_above(&item(5, 255, 255)));
        assert!(b.is_above(&item(5, 9, 9)));
        assert!(!b.is_above(&item(6, 1, 1)));
    }

    #[test]
    fn between_takes_shortest_separating_prefix() {
        let prev = item(5, 3, 1);
        let next = item(5, 3, 4);
        let b = Bound::between(&prev, &next);
        assert_eq!(b.prefix(), &[3, 4]);
        assert!(b.is_above(&prev));
        assert!(!b.is_above(&next));
        assert_ne!(b.prefix().last(), Some(&0));
    }

    #[test]
    fn infinity_is_above_everything_and_zero_below() {
        let top = Item::new(u64::MAX - 1, RecordId([255; 32]));
        assert!(Bound::INFINITY.is_above(&top));
        assert!(!Bound::ZERO.is_above(&Item::new(0, RecordId([0; 32]))));
        assert_eq!(Bound::ZERO.position_cmp(&Bound::INFINITY), Ordering::Less);
    }

    #[test]
    fn overlong_prefix_is_refused() {
        assert!(Bound::new(1, &[1; 33]).is_none());
        assert!(Bound::new(1, &[1; 32]).is_some());
    }
}
