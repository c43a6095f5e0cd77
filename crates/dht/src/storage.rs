//! What the node stores for others: announced peers (BEP 5) and items (BEP 44), and the tokens that gate
//! storing. Every map here is keyed by remote input, so every one is capped; when full, the entry heard from
//! longest ago makes room (a flood of new keys ages out old ones instead of locking the store).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::id::Id;
use crate::item::MutableItem;
use crate::krpc::code;

/// Most infohashes with announced peers.
pub const MAX_INFOHASHES: usize = 2048;
/// Most peers kept per infohash.
pub const MAX_PEERS_PER_INFOHASH: usize = 128;
/// Most peers put in one `get_peers` answer (fits one datagram with the other fields).
pub const MAX_PEERS_PER_ANSWER: usize = 50;
/// How long an announcement is kept (BitTorrent clients re-announce every 15 to 30 minutes).
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Most BEP 44 items stored.
pub const MAX_ITEMS: usize = 1024;
/// How long an item is kept without being put again (libtorrent: 2 hours).
pub const ITEM_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// How often the token secret changes; tokens of the previous secret are still accepted.
pub const TOKEN_ROTATION: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredItem {
    Immutable(Vec<u8>),
    Mutable(MutableItem),
}

#[derive(Debug)]
pub struct Storage {
    peers: BTreeMap<Id, Vec<(SocketAddrV4, Instant)>>,
    items: BTreeMap<Id, (StoredItem, Instant)>,
    secret: [u8; 16],
    previous_secret: [u8; 16],
    rotated: Option<Instant>,
}

impl Storage {
    pub fn new(secret: [u8; 16]) -> Self {
        Storage {
            peers: BTreeMap::new(),
            items: BTreeMap::new(),
            secret,
            previous_secret: secret,
            rotated: None,
        }
    }

    /// Changes the token secret when it is due; `fresh` is a new random secret.
    pub fn rotate(&mut self, now: Instant, fresh: [u8; 16]) -> bool {
        match self.rotated {
            None => {
                self.rotated = Some(now);
                false
            }
            Some(at) if now.saturating_duration_since(at) >= TOKEN_ROTATION => {
                self.previous_secret = self.secret;
                self.secret = fresh;
                self.rotated = Some(now);
                true
            }
            Some(_) => false,
        }
    }

    pub fn next_rotation(&self) -> Option<Instant> {
        self.rotated.map(|at| at + TOKEN_ROTATION)
    }

    fn token_with(secret: &[u8; 16], ip: Ipv4Addr) -> Vec<u8> {
        let mut h = Sha1::new();
        h.update(secret);
        h.update(ip.octets());
        h.finalize()[..8].to_vec()
    }

    /// The token we give `ip` (it proves, when it comes back, that the announcer receives at that address).
    pub fn token(&self, ip: Ipv4Addr) -> Vec<u8> {
        Self::token_with(&self.secret, ip)
    }

    pub fn token_is_valid(&self, ip: Ipv4Addr, token: &[u8]) -> bool {
        token == Self::token_with(&self.secret, ip)
            || token == Self::token_with(&self.previous_secret, ip)
    }

    /// Drops what expired.
    pub fn expire(&mut self, now: Instant) {
        for peers in self.peers.values_mut() {
            peers.retain(|(_, at)| now.saturating_duration_since(*at) < PEER_TTL);
        }
        self.peers.retain(|_, peers| !peers.is_empty());
        self.items
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < ITEM_TTL);
    }

    pub fn add_peer(&mut self, info_hash: Id, peer: SocketAddrV4, now: Instant) {
        if !self.peers.contains_key(&info_hash) && self.peers.len() >= MAX_INFOHASHES {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, peers)| peers.iter().map(|(_, at)| *at).max())
                .map(|(ih, _)| *ih);
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        let peers = self.peers.entry(info_hash).or_default();
        if let Some(existing) = peers.iter_mut().find(|(p, _)| *p == peer) {
            existing.1 = now;
            return;
        }
        if peers.len() >= MAX_PEERS_PER_INFOHASH
            && let Some(oldest) = peers
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(i, _)| i)
        {
            peers.swap_remove(oldest);
        }
        peers.push((peer, now));
    }

    /// Up to [`MAX_PEERS_PER_ANSWER`] peers for `info_hash`, most recently announced first.
    pub fn peers(&self, info_hash: &Id) -> Vec<SocketAddrV4> {
        let mut peers = self.peers.get(info_hash).cloned().unwrap_or_default();
        peers.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
        peers
            .into_iter()
            .take(MAX_PEERS_PER_ANSWER)
            .map(|(p, _)| p)
            .collect()
    }

    pub fn item(&self, target: &Id) -> Option<&StoredItem> {
        self.items.get(target).map(|(item, _)| item)
    }

    /// Stores a checked item under `target`. Mutable items follow BEP 44: a lower `seq` than the stored one is
    /// refused (302), a `cas` that is not the stored `seq` too (301); the same `seq` with another value is
    /// refused as well (it would let anyone holding an old signature flip between values). Returns the KRPC
    /// error code on refusal.
    pub fn put_item(
        &mut self,
        target: Id,
        item: StoredItem,
        cas: Option<i64>,
        now: Instant,
    ) -> Result<(), i64> {
        if let (Some((StoredItem::Mutable(old), _)), StoredItem::Mutable(new)) =
            (self.items.get(&target), &item)
        {
            if let Some(cas) = cas
                && cas != old.seq
            {
                return Err(code::CAS_MISMATCH);
            }
            if new.seq < old.seq || (new.seq == old.seq && new.value != old.value) {
                return Err(code::SEQ_TOO_LOW);
            }
        }
        if !self.items.contains_key(&target)
            && self.items.len() >= MAX_ITEMS
            && let Some(oldest) = self
                .items
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(t, _)| *t)
        {
            self.items.remove(&oldest);
        }
        self.items.insert(target, (item, now));
        Ok(())
    }

    pub fn infohash_count(&self) -> usize {
        self.peers.len()
    }

    pub fn item_count(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn addr(i: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + i), 1000)
    }

    #[test]
    fn peer_store_is_bounded_and_ages_out_the_oldest() {
        let t0 = Instant::now();
        let mut s = Storage::new([1; 16]);
        for i in 0..(MAX_INFOHASHES as u32 + 10) {
            let mut ih = [0; 20];
            ih[..4].copy_from_slice(&i.to_be_bytes());
            s.add_peer(Id(ih), addr(i), t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(s.infohash_count(), MAX_INFOHASHES);
        assert!(
            s.peers(&Id([0; 20])).is_empty(),
            "the oldest infohash made room"
        );
        let ih = Id([9; 20]);
        for i in 0..(MAX_PEERS_PER_INFOHASH as u32 * 2) {
            s.add_peer(ih, addr(i), t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(s.peers.get(&ih).map(Vec::len), Some(MAX_PEERS_PER_INFOHASH));
        assert_eq!(s.peers(&ih).len(), MAX_PEERS_PER_ANSWER);
        s.expire(t0 + PEER_TTL + Duration::from_secs(10));
        assert_eq!(s.infohash_count(), 0);
    }

    #[test]
    fn tokens_are_per_ip_and_survive_one_rotation() {
        let t0 = Instant::now();
        let mut s = Storage::new([1; 16]);
        s.rotate(t0, [2; 16]);
        let ip = Ipv4Addr::new(1, 2, 3, 4);
        let token = s.token(ip);
        assert!(s.token_is_valid(ip, &token));
        assert!(!s.token_is_valid(Ipv4Addr::new(1, 2, 3, 5), &token));
        assert!(s.rotate(t0 + TOKEN_ROTATION, [3; 16]));
        assert!(s.token_is_valid(ip, &token));
        assert!(s.rotate(t0 + TOKEN_ROTATION * 2, [4; 16]));
        assert!(!s.token_is_valid(ip, &token));
    }

    #[test]
    fn mutable_items_follow_seq_and_cas() {
        let now = Instant::now();
        let mut s = Storage::new([1; 16]);
        let key = SigningKey::from_bytes(&[3; 32]);
        let item = |seq, v: &[u8]| MutableItem::sign(&key, v.to_vec(), seq, Vec::new()).unwrap();
        let target = item(1, b"1:a").target();
        assert_eq!(
            s.put_item(target, StoredItem::Mutable(item(2, b"1:a")), None, now),
            Ok(())
        );
        assert_eq!(
            s.put_item(target, StoredItem::Mutable(item(1, b"1:a")), None, now),
            Err(code::SEQ_TOO_LOW)
        );
        assert_eq!(
            s.put_item(target, StoredItem::Mutable(item(2, b"1:b")), None, now),
            Err(code::SEQ_TOO_LOW)
        );
        assert_eq!(
            s.put_item(target, StoredItem::Mutable(item(2, b"1:a")), None, now),
            Ok(())
        );
        assert_eq!(
            s.put_item(target, StoredItem::Mutable(item(3, b"1:b")), Some(1), now),
            Err(code::CAS_MISMATCH)
        );
        assert_eq!(
            s.put_item(target, StoredItem::Mutable(item(3, b"1:b")), Some(2), now),
            Ok(())
        );
        assert_eq!(s.item(&target), Some(&StoredItem::Mutable(item(3, b"1:b"))));
    }
}
