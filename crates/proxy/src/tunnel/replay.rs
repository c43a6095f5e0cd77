//! The bridge's memory of handshakes it has accepted, so that recorded handshake bytes sent again get nothing.
//!
//! A handshake carries the client's clock (inside the encryption). The bridge accepts it only if that time is
//! within `window` of its own clock and its random nonce was not seen before. Entries older than the window are
//! dropped, since the time check already refuses them. If the cache is full, the oldest entry is dropped and
//! every handshake at or before its time is refused from then on (`floor`), so eviction never reopens a replay.

use std::collections::{BTreeSet, HashSet};

use super::obfs::NONCE_LEN;

/// Why a handshake was refused by the replay check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayVerdict {
    Fresh,
    OutsideWindow,
    Replayed,
}

/// Bounded set of recently accepted handshake nonces.
#[derive(Debug)]
pub struct ReplayCache {
    seen: HashSet<[u8; NONCE_LEN]>,
    by_time: BTreeSet<(u64, [u8; NONCE_LEN])>,
    floor: Option<u64>,
    window_secs: u64,
    capacity: usize,
}

impl ReplayCache {
    /// A cache accepting clocks within `window_secs` of the bridge's and holding at most `capacity` entries.
    pub fn new(window_secs: u64, capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: HashSet::new(),
            by_time: BTreeSet::new(),
            floor: None,
            window_secs,
            capacity: capacity.max(1),
        }
    }

    /// Checks a handshake's nonce and client time against the bridge's `now_secs`, remembering it if fresh.
    pub fn check(
        &mut self,
        nonce: [u8; NONCE_LEN],
        client_secs: u64,
        now_secs: u64,
    ) -> ReplayVerdict {
        if client_secs.abs_diff(now_secs) > self.window_secs {
            return ReplayVerdict::OutsideWindow;
        }
        let cutoff = now_secs.saturating_sub(self.window_secs);
        while let Some(&(time, old)) = self.by_time.first() {
            if time >= cutoff {
                break;
            }
            self.by_time.pop_first();
            self.seen.remove(&old);
        }
        if self.floor.is_some_and(|floor| client_secs <= floor) {
            return ReplayVerdict::Replayed;
        }
        if self.seen.contains(&nonce) {
            return ReplayVerdict::Replayed;
        }
        while self.seen.len() >= self.capacity {
            let Some((time, old)) = self.by_time.pop_first() else {
                break;
            };
            self.seen.remove(&old);
            self.floor = Some(self.floor.map_or(time, |floor| floor.max(time)));
        }
        self.seen.insert(nonce);
        self.by_time.insert((client_secs, nonce));
        ReplayVerdict::Fresh
    }

    /// How many handshakes are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeats_and_stale_clocks_are_refused() {
        let mut cache = ReplayCache::new(600, 100);
        assert_eq!(cache.check([1; 32], 10_000, 10_000), ReplayVerdict::Fresh);
        assert_eq!(
            cache.check([1; 32], 10_000, 10_001),
            ReplayVerdict::Replayed
        );
        assert_eq!(
            cache.check([2; 32], 9_000, 10_000),
            ReplayVerdict::OutsideWindow
        );
        assert_eq!(
            cache.check([2; 32], 11_000, 10_000),
            ReplayVerdict::OutsideWindow
        );
        // After the window the entry goes, and the clock check refuses the old handshake instead.
        assert_eq!(cache.check([3; 32], 10_700, 10_700), ReplayVerdict::Fresh);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.check([1; 32], 10_000, 10_700),
            ReplayVerdict::OutsideWindow
        );
    }

    #[test]
    fn eviction_never_reopens_a_replay() {
        let mut cache = ReplayCache::new(600, 2);
        assert_eq!(cache.check([1; 32], 100, 100), ReplayVerdict::Fresh);
        assert_eq!(cache.check([2; 32], 101, 101), ReplayVerdict::Fresh);
        assert_eq!(cache.check([3; 32], 102, 102), ReplayVerdict::Fresh);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.check([1; 32], 100, 103), ReplayVerdict::Replayed);
    }

    proptest! {
        #[test]
        fn no_nonce_is_accepted_twice(ops in prop::collection::vec((0..16u8, 0..50u64, 0..5u64), 0..200), cap in 1..8usize) {
            let mut cache = ReplayCache::new(20, cap);
            let mut now = 1000;
            let mut accepted = HashSet::new();
            for (nonce, offset, step) in ops {
                now += step;
                let client = now + offset - 25;
                if cache.check([nonce; 32], client, now) == ReplayVerdict::Fresh {
                    // The same handshake bytes (nonce and clock) are never let in twice.
                    prop_assert!(accepted.insert((nonce, client)), "handshake {} at {} accepted twice", nonce, client);
                }
                prop_assert!(cache.len() <= cap);
            }
        }
    }
}
