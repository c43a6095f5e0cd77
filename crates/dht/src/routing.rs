//! The Kademlia routing table: 160 buckets of at most K nodes, by how many leading bits a node id shares with
//! ours.
//!
//! Only nodes that answered one of our queries are inserted (a query alone proves nothing: its source address
//! may be spoofed, and BEP 43 read-only nodes must not be used). A node is *good* while it answered within
//! [`GOOD_FOR`], *questionable* after that, and *bad* once [`BAD_AFTER_FAILURES`] queries to it in a row went
//! unanswered. A full bucket takes a new node only in place of a bad one; questionable nodes are pinged by
//! the node's maintenance so that bad ones show themselves.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::id::{Id, NodeInfo};

/// Nodes per bucket (Kademlia's k).
pub const K: usize = 8;
/// How long a node that answered stays good without being heard from again (BEP 5: 15 minutes).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row after which a node is bad.
pub const BAD_AFTER_FAILURES: u8 = 2;
/// Number of buckets (one per possible shared-prefix length below 160).
const BUCKETS: usize = 160;

#[derive(Clone, Debug)]
pub struct Entry {
    pub node: NodeInfo,
    pub last_answer: Instant,
    pub failures: u8,
}

impl Entry {
    pub fn is_good(&self, now: Instant) -> bool {
        self.failures == 0 && now.saturating_duration_since(self.last_answer) < GOOD_FOR
    }

    pub fn is_bad(&self) -> bool {
        self.failures >= BAD_AFTER_FAILURES
    }
}

/// The routing table of the node with id `own`. At most `160 * K` entries.
#[derive(Debug)]
pub struct RoutingTable {
    own: Id,
    buckets: Vec<Vec<Entry>>,
}

impl RoutingTable {
    pub fn new(own: Id) -> Self {
        RoutingTable {
            own,
            buckets: vec![Vec::new(); BUCKETS],
        }
    }

    pub fn own_id(&self) -> Id {
        self.own
    }

    fn bucket_index(&self, id: &Id) -> Option<usize> {
        let prefix = self.own.common_prefix(id);
        (prefix < BUCKETS).then_some(prefix)
    }

    /// Records that `node` answered us at `now`: refreshes it, or inserts it if its bucket has room or a bad
    /// node to replace. Returns whether the node is in the table afterwards.
    pub fn record_answer(&mut self, node: NodeInfo, now: Instant) -> bool {
        let Some(index) = self.bucket_index(&node.id) else {
            return false;
        };
        // The same address with another id (a restarted node) replaces the old entry, wherever it is.
        self.remove_addr_unless_id(node.addr, node.id);
        let bucket = &mut self.buckets[index];
        if let Some(entry) = bucket.iter_mut().find(|e| e.node.id == node.id) {
            if entry.node.addr != node.addr {
                // An id that moved: keep the address we know answers until it fails.
                return true;
            }
            entry.last_answer = now;
            entry.failures = 0;
            return true;
        }
        let fresh = Entry {
            node,
            last_answer: now,
            failures: 0,
        };
        if bucket.len() < K {
            bucket.push(fresh);
            return true;
        }
        if let Some(bad) = bucket.iter_mut().find(|e| e.is_bad()) {
            *bad = fresh;
            return true;
        }
        false
    }

    fn remove_addr_unless_id(&mut self, addr: SocketAddrV4, id: Id) {
        for bucket in &mut self.buckets {
            bucket.retain(|e| e.node.addr != addr || e.node.id == id);
        }
    }

    /// Whether a node with this id could be inserted now (its bucket has room or a bad node).
    pub fn has_room_for(&self, id: &Id) -> bool {
        match self.bucket_index(id) {
            Some(i) => {
                let bucket = &self.buckets[i];
                !bucket.iter().any(|e| e.node.id == *id)
                    && (bucket.len() < K || bucket.iter().any(Entry::is_bad))
            }
            None => false,
        }
    }

    pub fn contains_addr(&self, addr: &SocketAddrV4) -> bool {
        self.entries().any(|e| e.node.addr == *addr)
    }

    /// Records that a query to `addr` went unanswered.
    pub fn record_failure(&mut self, addr: &SocketAddrV4) {
        for bucket in &mut self.buckets {
            for entry in bucket.iter_mut().filter(|e| e.node.addr == *addr) {
                entry.failures = entry.failures.saturating_add(1);
            }
        }
    }

    /// The `count` non-bad nodes closest to `target`, closest first.
    pub fn closest(&self, target: &Id, count: usize) -> Vec<NodeInfo> {
        let mut all: Vec<&Entry> = self.entries().filter(|e| !e.is_bad()).collect();
        all.sort_by_key(|e| e.node.id.distance(target));
        all.into_iter().take(count).map(|e| e.node).collect()
    }

    /// Nodes that should be pinged: questionable (not good, not yet bad), oldest answer first.
    pub fn questionable(&self, now: Instant, count: usize) -> Vec<SocketAddrV4> {
        let mut q: Vec<&Entry> = self
            .entries()
            .filter(|e| !e.is_good(now) && !e.is_bad())
            .collect();
        q.sort_by_key(|e| e.last_answer);
        q.into_iter().take(count).map(|e| e.node.addr).collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flatten()
    }

    /// Good nodes (answered recently, no failure since).
    pub fn good_count(&self, now: Instant) -> usize {
        self.entries().filter(|e| e.is_good(now)).count()
    }

    pub fn len(&self) -> usize {
        self.entries().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(first: u8, last: u8, port: u16) -> NodeInfo {
        let mut id = [0; 20];
        id[0] = first;
        id[19] = last;
        NodeInfo {
            id: Id(id),
            addr: SocketAddrV4::new([10, 0, 0, last].into(), port),
        }
    }

    #[test]
    fn a_full_bucket_takes_new_nodes_only_in_place_of_bad_ones() {
        let now = Instant::now();
        let mut table = RoutingTable::new(Id([0; 20]));
        // All with first byte 0x80: the same bucket (no shared prefix).
        for i in 0..K as u8 {
            assert!(table.record_answer(node(0x80, i, 1), now));
        }
        assert!(!table.record_answer(node(0x80, 100, 1), now), "bucket full");
        assert_eq!(table.len(), K);
        table.record_failure(&node(0x80, 3, 1).addr);
        assert!(
            !table.record_answer(node(0x80, 100, 1), now),
            "one failure is not bad yet"
        );
        table.record_failure(&node(0x80, 3, 1).addr);
        assert!(table.has_room_for(&node(0x80, 100, 1).id));
        assert!(table.record_answer(node(0x80, 100, 1), now));
        assert_eq!(table.len(), K);
        assert!(!table.contains_addr(&node(0x80, 3, 1).addr));
    }

    #[test]
    fn closest_orders_by_xor_distance_and_skips_bad_nodes() {
        let now = Instant::now();
        let mut table = RoutingTable::new(Id([0; 20]));
        for first in [0x01u8, 0x02, 0x40, 0x80] {
            table.record_answer(node(first, first, 1), now);
        }
        let target = node(0x03, 0, 1).id;
        let closest: Vec<u8> = table
            .closest(&target, 3)
            .iter()
            .map(|n| n.id.0[0])
            .collect();
        assert_eq!(closest, vec![0x02, 0x01, 0x40]);
        table.record_failure(&node(0x02, 0x02, 1).addr);
        table.record_failure(&node(0x02, 0x02, 1).addr);
        assert_eq!(table.closest(&target, 1)[0].id.0[0], 0x01);
    }

    #[test]
    fn nodes_go_questionable_with_time_and_our_own_id_is_never_stored() {
        let now = Instant::now();
        let mut table = RoutingTable::new(Id([0; 20]));
        assert!(!table.record_answer(
            NodeInfo {
                id: Id([0; 20]),
                addr: "1.1.1.1:1".parse().unwrap()
            },
            now
        ));
        table.record_answer(node(0x80, 1, 1), now);
        assert!(table.questionable(now, 8).is_empty());
        let later = now + GOOD_FOR + Duration::from_secs(1);
        assert_eq!(table.questionable(later, 8), vec![node(0x80, 1, 1).addr]);
        table.record_answer(node(0x80, 1, 1), later);
        assert_eq!(table.good_count(later), 1);
    }

    #[test]
    fn a_restarted_node_on_the_same_address_replaces_its_old_id() {
        let now = Instant::now();
        let mut table = RoutingTable::new(Id([0; 20]));
        let old = node(0x80, 1, 1);
        let new = NodeInfo {
            id: node(0x40, 1, 1).id,
            addr: old.addr,
        };
        table.record_answer(old, now);
        table.record_answer(new, now);
        assert_eq!(table.len(), 1);
        assert_eq!(table.closest(&Id([0; 20]), 8), vec![new]);
    }
}
