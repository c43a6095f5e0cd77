//! When the node's wire identity is renewed (issue 12 part 3, "unlinkable identity").
//!
//! A node's wire identity (the Ed25519 node key that its wire handshakes prove) is what every peer it connects to
//! sees. If it never changed, a peer met at home and a peer met in a café a month later would know they had met the
//! same person. So the node makes a new key at every start (never saved) and renews it while running:
//!
//! - at least every [`RotationPolicy::max_age`] (a day by default, [`DEFAULT_MAX_AGE`]), measured on the clock the
//!   driver passes in; a clock that goes back counts as time up (renewing too often costs a reconnection, renewing
//!   too rarely costs the user's safety);
//! - when the set of the node's own addresses changes (another Wi-Fi, a VPN switched on or off, a new lease): the
//!   new network must meet a new identity. An empty set (offline) is no network at all: no peer sees the key, so
//!   going offline does not renew it, but coming back on *another* set of addresses does; coming back on the same
//!   set does not. A key made while offline is adopted by the first set of addresses it is used on.
//!
//! This module decides only; it holds no key, reads no clock and lists no interface. The node's driver
//! (`kolokol-node`'s `rotation.rs`) asks it now and then with the time and the addresses it observed, and renews the
//! key when told to.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

/// The longest a wire identity is used: one day.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Why the identity must be renewed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationReason {
    /// The identity is [`RotationPolicy::max_age`] old (or the clock went back).
    Age,
    /// The node's addresses are not the ones the identity was used on.
    AddressesChanged,
}

/// A policy that could never renew anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the longest life of a wire identity must be more than zero")]
pub struct ZeroMaxAge;

/// Decides when the wire identity is renewed; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct RotationPolicy {
    max_age: Duration,
    /// When the current identity was made, on the driver's clock.
    since: Duration,
    /// The addresses the current identity is used on; empty until it is used on any (made while offline).
    addresses: BTreeSet<IpAddr>,
}

impl RotationPolicy {
    /// The policy for an identity made at `now` while the node has `addresses`.
    pub fn new(
        max_age: Duration,
        now: Duration,
        addresses: BTreeSet<IpAddr>,
    ) -> Result<RotationPolicy, ZeroMaxAge> {
        if max_age.is_zero() {
            return Err(ZeroMaxAge);
        }
        Ok(RotationPolicy {
            max_age,
            since: now,
            addresses,
        })
    }

    /// The longest an identity is used.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Whether the identity must be renewed, given the time and the node's addresses now. When the answer is
    /// `Some`, the policy takes it that the driver renews the identity at once (made at `now`, on `observed`).
    pub fn check(&mut self, now: Duration, observed: &BTreeSet<IpAddr>) -> Option<RotationReason> {
        let reason =
            if !observed.is_empty() && !self.addresses.is_empty() && *observed != self.addresses {
                Some(RotationReason::AddressesChanged)
            } else if now < self.since || now - self.since >= self.max_age {
                Some(RotationReason::Age)
            } else {
                None
            };
        match reason {
            Some(_) => {
                self.since = now;
                self.addresses = observed.clone();
            }
            // Offline, nothing changes; a key not yet used anywhere is adopted by the first addresses it sees.
            None if self.addresses.is_empty() => self.addresses = observed.clone(),
            None => {}
        }
        reason
    }

    /// When the current identity is due for renewal by age (on the driver's clock); the driver checks the addresses
    /// more often than that.
    pub fn due_at(&self) -> Duration {
        self.since.saturating_add(self.max_age)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::*;
    use std::net::Ipv4Addr;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn addrs(list: &[[u8; 4]]) -> BTreeSet<IpAddr> {
        list.iter()
            .map(|a| IpAddr::V4(Ipv4Addr::from(*a)))
            .collect()
    }

    const HOME: [u8; 4] = [192, 168, 1, 20];
    const CAFE: [u8; 4] = [10, 0, 0, 7];

    fn policy(now: u64, at: &[[u8; 4]]) -> RotationPolicy {
        RotationPolicy::new(DEFAULT_MAX_AGE, secs(now), addrs(at)).unwrap()
    }

    #[test]
    fn a_zero_max_age_is_refused() {
        assert_eq!(
            RotationPolicy::new(Duration::ZERO, secs(0), addrs(&[HOME])).unwrap_err(),
            ZeroMaxAge
        );
    }

    #[test]
    fn the_identity_is_renewed_once_a_day_on_the_same_network() {
        let mut p = policy(1000, &[HOME]);
        let day = DEFAULT_MAX_AGE.as_secs();
        assert_eq!(p.check(secs(1000 + day - 1), &addrs(&[HOME])), None);
        assert_eq!(p.due_at(), secs(1000 + day));
        assert_eq!(
            p.check(secs(1000 + day), &addrs(&[HOME])),
            Some(RotationReason::Age)
        );
        // The new identity starts its own day.
        assert_eq!(p.check(secs(1000 + 2 * day - 1), &addrs(&[HOME])), None);
        assert_eq!(
            p.check(secs(1000 + 2 * day), &addrs(&[HOME])),
            Some(RotationReason::Age)
        );
    }

    #[test]
    fn another_network_gets_a_new_identity_at_once() {
        let mut p = policy(0, &[HOME]);
        assert_eq!(p.check(secs(5), &addrs(&[HOME])), None);
        assert_eq!(
            p.check(secs(10), &addrs(&[CAFE])),
            Some(RotationReason::AddressesChanged)
        );
        // Renewed once: the café keeps the new identity.
        assert_eq!(p.check(secs(20), &addrs(&[CAFE])), None);
        // An address more (a VPN switched on) or less is a change too.
        assert_eq!(
            p.check(secs(30), &addrs(&[CAFE, HOME])),
            Some(RotationReason::AddressesChanged)
        );
        assert_eq!(
            p.check(secs(40), &addrs(&[HOME])),
            Some(RotationReason::AddressesChanged)
        );
    }

    #[test]
    fn going_offline_and_back_to_the_same_network_keeps_the_identity() {
        let mut p = policy(0, &[HOME]);
        assert_eq!(p.check(secs(10), &addrs(&[])), None);
        assert_eq!(p.check(secs(20), &addrs(&[HOME])), None);
        // Offline, then another network: renewed.
        assert_eq!(p.check(secs(30), &addrs(&[])), None);
        assert_eq!(
            p.check(secs(40), &addrs(&[CAFE])),
            Some(RotationReason::AddressesChanged)
        );
    }

    #[test]
    fn an_identity_made_offline_is_adopted_by_the_first_network() {
        let mut p = policy(0, &[]);
        assert_eq!(p.check(secs(10), &addrs(&[CAFE])), None);
        assert_eq!(
            p.check(secs(20), &addrs(&[HOME])),
            Some(RotationReason::AddressesChanged)
        );
    }

    #[test]
    fn age_counts_while_offline_and_a_key_renewed_offline_is_adopted() {
        let day = DEFAULT_MAX_AGE.as_secs();
        let mut p = policy(0, &[HOME]);
        assert_eq!(p.check(secs(day), &addrs(&[])), Some(RotationReason::Age));
        // The key made offline has been used nowhere: the next network adopts it.
        assert_eq!(p.check(secs(day + 10), &addrs(&[CAFE])), None);
        assert_eq!(p.check(secs(day + 20), &addrs(&[CAFE])), None);
    }

    #[test]
    fn a_clock_that_goes_back_renews_the_identity() {
        let mut p = policy(10_000, &[HOME]);
        assert_eq!(
            p.check(secs(9_000), &addrs(&[HOME])),
            Some(RotationReason::Age)
        );
        assert_eq!(p.check(secs(9_001), &addrs(&[HOME])), None);
    }

    #[test]
    fn a_custom_age_is_kept() {
        let mut p = RotationPolicy::new(secs(60), secs(0), addrs(&[HOME])).unwrap();
        assert_eq!(p.max_age(), secs(60));
        assert_eq!(p.check(secs(59), &addrs(&[HOME])), None);
        assert_eq!(
            p.check(secs(60), &addrs(&[HOME])),
            Some(RotationReason::Age)
        );
        assert_eq!(p.due_at(), secs(120));
    }
}
