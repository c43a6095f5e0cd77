//! Penalties for misbehaving peers: a bounded set of offenders, each shut out for a time that doubles with every
//! offence.
//!
//! A peer that breaks the protocol or keeps sending invalid records is disconnected; without a penalty it could
//! reconnect at once and do it again, so every reconnect would cost this node a handshake and a burst of record
//! validation. The driver calls [`PenaltyBox::punish`] when it cuts a peer off and asks [`PenaltyBox::is_banned`]
//! after the next handshake with that peer (inbound or outbound) and closes the connection while the ban lasts.
//!
//! The set is keyed by whatever the driver identifies peers by (the node id proven in the handshake) and never holds
//! more than its capacity: when full, the entry whose ban ends first is dropped. Pure: the caller passes the time.

use std::collections::BTreeMap;
use std::time::Duration;

/// One offender: how often it offended and until when it is shut out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offender {
    offences: u32,
    banned_until: Duration,
}

/// A bounded set of banned peers with escalating ban times.
#[derive(Debug, Clone)]
pub struct PenaltyBox<K> {
    offenders: BTreeMap<K, Offender>,
    capacity: usize,
    first_ban: Duration,
    longest_ban: Duration,
}

impl<K: Ord + Clone> PenaltyBox<K> {
    /// At most `capacity` offenders (at least one is kept); the first offence bans for `first_ban`, each further one
    /// for twice as long as the one before, at most `longest_ban`.
    pub fn new(capacity: usize, first_ban: Duration, longest_ban: Duration) -> Self {
        PenaltyBox {
            offenders: BTreeMap::new(),
            capacity: capacity.max(1),
            first_ban,
            longest_ban: longest_ban.max(first_ban),
        }
    }

    /// `peer` offended at `now`: ban it. Returns how long the ban lasts.
    pub fn punish(&mut self, peer: K, now: Duration) -> Duration {
        let offences = self
            .offenders
            .get(&peer)
            .map_or(1, |o| o.offences.saturating_add(1));
        let ban = self
            .first_ban
            .checked_mul(1u32.checked_shl(offences - 1).unwrap_or(u32::MAX))
            .unwrap_or(self.longest_ban)
            .min(self.longest_ban);
        if !self.offenders.contains_key(&peer) && self.offenders.len() >= self.capacity {
            self.evict_one();
        }
        self.offenders.insert(
            peer,
            Offender {
                offences,
                banned_until: now.saturating_add(ban),
            },
        );
        ban
    }

    /// Whether `peer` is shut out at `now`.
    pub fn is_banned(&self, peer: &K, now: Duration) -> bool {
        self.offenders
            .get(peer)
            .is_some_and(|o| now < o.banned_until)
    }

    /// How many offenders are remembered (banned now or earlier, their offence count kept for escalation).
    pub fn len(&self) -> usize {
        self.offenders.len()
    }

    /// Whether no offender is remembered.
    pub fn is_empty(&self) -> bool {
        self.offenders.is_empty()
    }

    /// Drop the offender whose ban ends first (an expired one if there is any).
    fn evict_one(&mut self) {
        let first = self
            .offenders
            .iter()
            .min_by_key(|(_, o)| o.banned_until)
            .map(|(k, _)| k.clone());
        if let Some(key) = first {
            self.offenders.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_ban_lasts_its_time_and_doubles_with_each_offence() {
        let mut bans = PenaltyBox::new(8, secs(60), secs(600));
        assert!(!bans.is_banned(&1, secs(0)));
        assert_eq!(bans.punish(1, secs(0)), secs(60));
        assert!(bans.is_banned(&1, secs(59)));
        assert!(!bans.is_banned(&1, secs(60)));
        assert!(!bans.is_banned(&2, secs(1)), "others are not affected");
        assert_eq!(bans.punish(1, secs(100)), secs(120));
        assert_eq!(bans.punish(1, secs(300)), secs(240));
        assert_eq!(bans.punish(1, secs(600)), secs(480));
        assert_eq!(bans.punish(1, secs(1200)), secs(600), "capped");
        for _ in 0..100 {
            bans.punish(1, secs(2000));
        }
        assert!(bans.is_banned(&1, secs(2599)));
        assert!(!bans.is_banned(&1, secs(2600)));
    }

    #[test]
    fn the_set_stays_bounded_and_drops_the_ban_that_ends_first() {
        let mut bans = PenaltyBox::new(3, secs(10), secs(100));
        bans.punish(1, secs(0));
        bans.punish(2, secs(5));
        bans.punish(3, secs(6));
        bans.punish(4, secs(7));
        assert_eq!(bans.len(), 3);
        assert!(!bans.is_banned(&1, secs(8)), "the earliest-ending ban went");
        assert!(bans.is_banned(&2, secs(8)));
        assert!(bans.is_banned(&4, secs(8)));
        // Punishing a known offender again does not evict anyone.
        bans.punish(4, secs(8));
        assert_eq!(bans.len(), 3);
        assert!(bans.is_banned(&2, secs(8)) && bans.is_banned(&3, secs(8)));
    }

    #[test]
    fn a_zero_capacity_still_keeps_one() {
        let mut bans = PenaltyBox::new(0, secs(10), secs(5));
        assert_eq!(
            bans.punish("a", secs(0)),
            secs(10),
            "longest is at least first"
        );
        assert!(bans.is_banned(&"a", secs(1)));
        bans.punish("b", secs(1));
        assert_eq!(bans.len(), 1);
    }
}
