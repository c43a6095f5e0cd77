//! Proven replicas: a peer's claim to hold a publication (`Holding`) counts only once it has answered a challenge
//! that needs the data.
//!
//! A claim costs nothing to make and node ids cost nothing to mint, so a believed claim lets one liar announce a
//! publication while its publisher is still the only real seeder, and makes mirrors (rarest first) skip what only
//! the liar "holds". Here a claim is answered with a [`Challenge`]: a fresh random nonce and a few random byte
//! ranges of the publication's piece stream (the torrent's files concatenated in torrent order, padding as zeros),
//! chosen by us. The claimant answers with [`proof_digest`] over those bytes, keyed by the nonce, which we compute
//! from our own copy. A claim is only ever challenged, and so only ever counted, by a node that holds the data
//! itself; a claim it cannot check does not count.
//!
//! One [`HolderProofs`] per node, sans-IO: the driver tells it which peers are connected (with their address),
//! what they claim, what they answer and when time passes, and carries out the [`ProofEvent`]s of
//! [`HolderProofs::poll`]:
//!
//! 1. [`ProofEvent::Challenge`]: read our own bytes of the ranges, compute the digest the answer must have
//!    ([`proof_digest`]), give it to [`HolderProofs::armed`] (or [`HolderProofs::abandon`] when our copy cannot
//!    be read) and send the challenge. The deadline counts from when the challenge was polled.
//! 2. [`ProofEvent::Proven`]: the claim checked. `counted` says whether it counts as a holder (see prefixes).
//! 3. [`ProofEvent::Failed`]: a wrong proof, or none before the deadline. The peer's counted claims are dropped
//!    everywhere (a liar once is believed nowhere) and the driver treats it as misconduct (disconnect and ban).
//!
//! A claim of a publication we do not hold is remembered (bounded) and challenged once we come to hold it
//! ([`HolderProofs::now_held`]: a download completed), so a node that fetches a publication learns which of the
//! peers that claimed it before really hold it.
//!
//! A peer that answers a challenge with a decline ("I do not hold it": an honest node may have evicted the data
//! since it claimed it) is not penalised, and its claim does not count.
//!
//! # Counting per address prefix
//! Proving one copy from many node ids is free: a machine with the data can answer for every id it makes. Ids are
//! free, addresses are not, so at most one holder is counted per publication and per address prefix: a /24 for IPv4
//! (the longest prefix routed between networks, and what one customer or VPS subnet usually has) and a /48 for
//! IPv6 (the usual allocation to one site; a single host often has a whole /64, so anything longer is free for
//! it). Addresses that are not routed on the Internet (private, link-local, unique local, CGNAT, the unspecified
//! address) are counted each on its own: on a LAN cut off from the Internet every node shares the prefix, and
//! there an address costs as much as a machine on that network. Loopback peers are not limited at all: they run on
//! this very machine (tests, or a user's own setup), and whoever can start processes here has no need to lie.
//!
//! # Bounds
//! Peers tracked ([`ProofConfig::max_peers`]), claims waiting per peer ([`ProofConfig::backlog_per_peer`] to be
//! challenged, [`ProofConfig::unchecked_per_peer`] until we hold the data),
//! challenges outstanding per peer ([`ProofConfig::pending_per_peer`]), publications with counted holders
//! ([`ProofConfig::max_publications`]) and holders per publication ([`ProofConfig::holders_per_publication`]).
//! Nothing here reads a clock or draws a random number: time is passed in as `u64` seconds, the RNG as an argument.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use rand_core::RngCore;
use sha2::{Digest, Sha256};

use crate::record::InfoHash;

/// Length of a challenge's nonce.
pub const NONCE_BYTES: usize = 32;
/// Length of a proof.
pub const DIGEST_BYTES: usize = 32;
/// Most ranges in one challenge (the wire's cap).
pub const MAX_RANGES: usize = 8;
/// Longest range in one challenge (the wire's cap): an answer reads at most `MAX_RANGES * MAX_RANGE_LEN` bytes.
pub const MAX_RANGE_LEN: u32 = 16 * 1024;
/// Domain separation of the proof digest.
const DIGEST_DOMAIN: &[u8] = b"kolokol replica proof v1";

/// One byte range of a publication's piece stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u32,
}

/// What we ask a claimant to prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Correlates the answer with the challenge.
    pub id: u64,
    pub infohash: InfoHash,
    pub nonce: [u8; NONCE_BYTES],
    pub ranges: Vec<ByteRange>,
}

/// The answer to a challenge: SHA-256 over a domain tag, the nonce, the infohash, and each range's offset, length
/// and bytes, in the challenge's order. `bytes[i]` must be the bytes of `ranges[i]`; `None` when a length differs.
pub fn proof_digest(
    nonce: &[u8; NONCE_BYTES],
    infohash: &InfoHash,
    ranges: &[ByteRange],
    bytes: &[Vec<u8>],
) -> Option<[u8; DIGEST_BYTES]> {
    if ranges.len() != bytes.len() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(DIGEST_DOMAIN);
    hasher.update(nonce);
    hasher.update(infohash.0);
    for (range, data) in ranges.iter().zip(bytes) {
        if data.len() != range.len as usize {
            return None;
        }
        hasher.update(range.offset.to_be_bytes());
        hasher.update(range.len.to_be_bytes());
        hasher.update(data);
    }
    Some(hasher.finalize().into())
}

/// Whether a challenge's ranges may be answered for a publication of `total` bytes: 1 to [`MAX_RANGES`] ranges,
/// each 1 to [`MAX_RANGE_LEN`] bytes and inside the data. The answering side checks this before reading anything.
pub fn ranges_fit(ranges: &[ByteRange], total: u64) -> bool {
    !ranges.is_empty()
        && ranges.len() <= MAX_RANGES
        && ranges.iter().all(|r| {
            r.len >= 1
                && r.len <= MAX_RANGE_LEN
                && r.offset
                    .checked_add(u64::from(r.len))
                    .is_some_and(|end| end <= total)
        })
}

/// The pieces of `range` in a stream made of files of `lengths` in order: `(file index, offset in the file, length)`.
/// Empty when the range does not fit.
pub fn locate(lengths: &[u64], range: ByteRange) -> Vec<(usize, u64, u64)> {
    let mut out = Vec::new();
    let Some(end) = range.offset.checked_add(u64::from(range.len)) else {
        return out;
    };
    let mut start = 0u64;
    for (index, &len) in lengths.iter().enumerate() {
        let Some(file_end) = start.checked_add(len) else {
            return Vec::new();
        };
        let from = range.offset.max(start);
        let to = end.min(file_end);
        if from < to {
            out.push((index, from - start, to - from));
        }
        start = file_end;
    }
    if start < end {
        return Vec::new();
    }
    out
}

/// Claims from one address prefix count once per publication (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HolderPrefix {
    /// A public IPv4 address's /24.
    V4([u8; 3]),
    /// A public IPv6 address's /48.
    V6([u8; 6]),
    /// An address not routed on the Internet, counted on its own.
    Local(IpAddr),
}

/// The prefix a claim from `ip` is counted under; `None` for loopback (not limited).
pub fn holder_prefix(ip: IpAddr) -> Option<HolderPrefix> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return None;
    }
    Some(match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let cgnat = o[0] == 100 && (o[1] & 0xc0) == 64;
            if v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || cgnat
            {
                HolderPrefix::Local(ip)
            } else {
                HolderPrefix::V4([o[0], o[1], o[2]])
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let unique_local = (s[0] & 0xfe00) == 0xfc00;
            let link_local = (s[0] & 0xffc0) == 0xfe80;
            if v6.is_unspecified() || unique_local || link_local {
                HolderPrefix::Local(ip)
            } else {
                let o = v6.octets();
                HolderPrefix::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        }
    })
}

/// Sizes, times and bounds of the proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofConfig {
    /// Ranges per challenge: 4. A peer holding a fraction f of the data passes with probability about f^4.
    pub ranges: usize,
    /// Bytes per range: 4 KiB (at most 16 KiB are read from disk to answer one challenge).
    pub range_len: u32,
    /// A proof must arrive within this many seconds of the challenge: 60 (an answer reads a few KiB).
    pub deadline_secs: u64,
    /// Challenges outstanding per peer: 2.
    pub pending_per_peer: usize,
    /// Claims waiting to be challenged per peer: 256 (newer claims beyond it are not counted).
    pub backlog_per_peer: usize,
    /// Claims of publications we do not hold, remembered per peer until we do (a download completes): 1024, the
    /// most a node lists on connecting.
    pub unchecked_per_peer: usize,
    /// Peers tracked: 256.
    pub max_peers: usize,
    /// Counted holders remembered per publication: 64.
    pub holders_per_publication: usize,
    /// Publications with counted holders: 100,000.
    pub max_publications: usize,
}

impl Default for ProofConfig {
    fn default() -> Self {
        ProofConfig {
            ranges: 4,
            range_len: 4096,
            deadline_secs: 60,
            pending_per_peer: 2,
            backlog_per_peer: 256,
            unchecked_per_peer: 1024,
            max_peers: 256,
            holders_per_publication: 64,
            max_publications: 100_000,
        }
    }
}

/// Why a claim failed its proof (misconduct).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofFailure {
    /// The digest does not match our copy.
    Wrong,
    /// No proof within the deadline.
    Late,
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofEvent<P> {
    /// Compute the expected digest from our copy ([`HolderProofs::armed`]) and send this challenge to `peer`.
    Challenge { peer: P, challenge: Challenge },
    /// `peer`'s claim checked; `counted`: it now counts as a holder (false: its prefix already has one).
    Proven {
        peer: P,
        infohash: InfoHash,
        counted: bool,
    },
    /// `peer`'s claim failed: treat it as misconduct. Its counted claims were dropped.
    Failed {
        peer: P,
        infohash: InfoHash,
        failure: ProofFailure,
    },
}

#[derive(Clone, Debug)]
struct Pending<P> {
    peer: P,
    infohash: InfoHash,
    deadline: u64,
    /// Set by [`HolderProofs::armed`]; a proof that arrives before is treated like one for an abandoned challenge.
    expected: Option<[u8; DIGEST_BYTES]>,
}

#[derive(Clone, Debug)]
struct PeerState {
    prefix: Option<HolderPrefix>,
    /// Claims to challenge: infohash and the length of its piece stream.
    backlog: VecDeque<(InfoHash, u64)>,
    /// Claims of publications we do not hold (yet): challenged once we do ([`HolderProofs::now_held`]).
    unchecked: BTreeSet<InfoHash>,
    pending: usize,
}

/// The claims of every connected peer and the holders they proved. See the module documentation.
#[derive(Clone, Debug)]
pub struct HolderProofs<P: Ord + Clone> {
    config: ProofConfig,
    peers: BTreeMap<P, PeerState>,
    pending: BTreeMap<u64, Pending<P>>,
    /// Counted holders of each publication, with the prefix each is counted under (`None`: loopback).
    holders: BTreeMap<InfoHash, Vec<(Option<HolderPrefix>, P)>>,
    events: VecDeque<ProofEvent<P>>,
}

impl<P: Ord + Clone> HolderProofs<P> {
    pub fn new(mut config: ProofConfig) -> Self {
        config.ranges = config.ranges.clamp(1, MAX_RANGES);
        config.range_len = config.range_len.clamp(1, MAX_RANGE_LEN);
        config.pending_per_peer = config.pending_per_peer.max(1);
        HolderProofs {
            config,
            peers: BTreeMap::new(),
            pending: BTreeMap::new(),
            holders: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &ProofConfig {
        &self.config
    }

    /// `peer` connected from `ip`. Claims from peers not connected are ignored. False when too many peers are tracked.
    pub fn peer_connected(&mut self, peer: P, ip: IpAddr) -> bool {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.config.max_peers {
            return false;
        }
        let prefix = holder_prefix(ip);
        self.peers
            .entry(peer)
            .and_modify(|s| s.prefix = prefix)
            .or_insert(PeerState {
                prefix,
                backlog: VecDeque::new(),
                unchecked: BTreeSet::new(),
                pending: 0,
            });
        true
    }

    /// `peer` disconnected: its waiting claims and open challenges are dropped (not held against it: it may have
    /// been cut off for another reason). What it proved stays counted: the data is on its disk.
    pub fn peer_gone(&mut self, peer: &P) {
        self.peers.remove(peer);
        self.pending.retain(|_, p| p.peer != *peer);
    }

    /// `peer` claims to hold every piece of `infohash`, whose piece stream we hold ourselves and is `total` bytes
    /// long. Ignored when already proven, waiting or challenged, when `total` is 0, or when the backlog is full.
    pub fn claim(&mut self, peer: &P, infohash: InfoHash, total: u64) {
        if total == 0 || self.is_counted_or_proven(peer, &infohash) {
            return;
        }
        if self
            .pending
            .values()
            .any(|p| p.peer == *peer && p.infohash == infohash)
        {
            return;
        }
        let backlog_cap = self.config.backlog_per_peer;
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        state.unchecked.remove(&infohash);
        if state.backlog.len() >= backlog_cap || state.backlog.iter().any(|(h, _)| *h == infohash) {
            return;
        }
        state.backlog.push_back((infohash, total));
    }

    /// `peer` claims `infohash`, which we do not hold complete: it cannot be checked (and does not count) now, and
    /// is challenged if we come to hold it ([`HolderProofs::now_held`]). Bounded per peer.
    pub fn claim_unchecked(&mut self, peer: &P, infohash: InfoHash) {
        let cap = self.config.unchecked_per_peer;
        if let Some(state) = self.peers.get_mut(peer)
            && state.unchecked.len() < cap
        {
            state.unchecked.insert(infohash);
        }
    }

    /// We now hold `infohash` complete (its piece stream is `total` bytes): the claims of it we could not check
    /// before are challenged.
    pub fn now_held(&mut self, infohash: InfoHash, total: u64) {
        let claimants: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, s)| s.unchecked.contains(&infohash))
            .map(|(p, _)| p.clone())
            .collect();
        for peer in claimants {
            self.claim(&peer, infohash, total);
        }
    }

    fn is_counted_or_proven(&self, peer: &P, infohash: &InfoHash) -> bool {
        self.holders
            .get(infohash)
            .is_some_and(|h| h.iter().any(|(_, p)| p == peer))
    }

    /// The next thing to do: queued outcomes first, then new challenges (at most
    /// [`ProofConfig::pending_per_peer`] per peer) whose deadline counts from `now`.
    pub fn poll<R: RngCore>(&mut self, now: u64, rng: &mut R) -> Option<ProofEvent<P>> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let cap = self.config.pending_per_peer;
        let (peer, infohash, total) = self.peers.iter_mut().find_map(|(peer, state)| {
            if state.pending >= cap {
                return None;
            }
            let (infohash, total) = state.backlog.pop_front()?;
            state.pending += 1;
            Some((peer.clone(), infohash, total))
        })?;
        let challenge = self.make_challenge(infohash, total, rng);
        self.pending.insert(
            challenge.id,
            Pending {
                peer: peer.clone(),
                infohash,
                deadline: now.saturating_add(self.config.deadline_secs),
                expected: None,
            },
        );
        Some(ProofEvent::Challenge { peer, challenge })
    }

    fn make_challenge<R: RngCore>(&self, infohash: InfoHash, total: u64, rng: &mut R) -> Challenge {
        let mut id = rng.next_u64();
        while self.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        let mut nonce = [0u8; NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        let len = u64::from(self.config.range_len).min(total);
        let span = total - len + 1;
        let ranges = (0..self.config.ranges)
            .map(|_| ByteRange {
                offset: rng.next_u64() % span,
                // `len` is at most `range_len`, a u32.
                len: u32::try_from(len).unwrap_or(self.config.range_len),
            })
            .collect();
        Challenge {
            id,
            infohash,
            nonce,
            ranges,
        }
    }

    /// The digest challenge `id` must be answered with, computed from our copy.
    pub fn armed(&mut self, id: u64, expected: [u8; DIGEST_BYTES]) {
        if let Some(pending) = self.pending.get_mut(&id) {
            pending.expected = Some(expected);
        }
    }

    /// Our copy could not be read (evicted meanwhile): the challenge is dropped and the claim not counted.
    pub fn abandon(&mut self, id: u64) {
        if let Some(pending) = self.pending.remove(&id) {
            self.release_slot(&pending.peer);
        }
    }

    /// `peer` answered challenge `id` with `digest` at `now`. An answer to no open challenge of this peer (a late one,
    /// after the failure was reported, or one never asked) is ignored.
    pub fn proof(&mut self, peer: &P, id: u64, digest: [u8; DIGEST_BYTES], now: u64) {
        match self.pending.get(&id) {
            Some(p) if p.peer == *peer => {}
            _ => return,
        }
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        self.release_slot(peer);
        let Some(expected) = pending.expected else {
            // We never computed what to expect: not the peer's fault, and not counted.
            return;
        };
        if now > pending.deadline {
            self.fail(peer.clone(), pending.infohash, ProofFailure::Late);
        } else if digest == expected {
            let counted = self.count(peer, pending.infohash);
            self.events.push_back(ProofEvent::Proven {
                peer: peer.clone(),
                infohash: pending.infohash,
                counted,
            });
        } else {
            self.fail(peer.clone(), pending.infohash, ProofFailure::Wrong);
        }
    }

    /// `peer` says it does not hold `infohash` (a decline): its open challenge and waiting claim for it are
    /// dropped, without penalty, and it no longer counts as a holder of it.
    pub fn declined(&mut self, peer: &P, infohash: &InfoHash) {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.peer == *peer && p.infohash == *infohash)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.pending.remove(&id);
            self.release_slot(peer);
        }
        if let Some(state) = self.peers.get_mut(peer) {
            state.backlog.retain(|(h, _)| h != infohash);
            state.unchecked.remove(infohash);
        }
        if let Some(holders) = self.holders.get_mut(infohash) {
            holders.retain(|(_, p)| p != peer);
            if holders.is_empty() {
                self.holders.remove(infohash);
            }
        }
    }

    /// Time passed: challenges past their deadline fail.
    pub fn tick(&mut self, now: u64) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now > p.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(pending) = self.pending.remove(&id) {
                self.release_slot(&pending.peer);
                if pending.expected.is_some() {
                    self.fail(pending.peer, pending.infohash, ProofFailure::Late);
                }
            }
        }
    }

    /// When [`HolderProofs::tick`] next has something to do.
    pub fn next_timeout(&self) -> Option<u64> {
        self.pending
            .values()
            .map(|p| p.deadline.saturating_add(1))
            .min()
    }

    /// Whether a challenge could be polled or an outcome is queued.
    pub fn has_work(&self) -> bool {
        let cap = self.config.pending_per_peer;
        !self.events.is_empty()
            || self
                .peers
                .values()
                .any(|s| s.pending < cap && !s.backlog.is_empty())
    }

    /// The counted holders of a publication (at most one per address prefix).
    pub fn holders(&self, infohash: &InfoHash) -> Vec<P> {
        self.holders
            .get(infohash)
            .map(|h| h.iter().map(|(_, p)| p.clone()).collect())
            .unwrap_or_default()
    }

    /// Forget a publication's holders (its author was blocked, or its data evicted here).
    pub fn forget(&mut self, infohash: &InfoHash) {
        self.holders.remove(infohash);
        self.pending.retain(|_, p| p.infohash != *infohash);
        for state in self.peers.values_mut() {
            state.backlog.retain(|(h, _)| h != infohash);
            state.unchecked.remove(infohash);
        }
        self.recount_slots();
    }

    /// Open challenges (for tests and status).
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    fn count(&mut self, peer: &P, infohash: InfoHash) -> bool {
        let Some(prefix) = self.peers.get(peer).map(|s| s.prefix) else {
            return false;
        };
        let cap = self.config.holders_per_publication;
        if !self.holders.contains_key(&infohash)
            && self.holders.len() >= self.config.max_publications
        {
            return false;
        }
        let holders = self.holders.entry(infohash).or_default();
        if holders.iter().any(|(_, p)| p == peer) {
            return true;
        }
        let taken = prefix.is_some() && holders.iter().any(|(q, _)| *q == prefix);
        if taken || holders.len() >= cap {
            return false;
        }
        holders.push((prefix, peer.clone()));
        true
    }

    fn fail(&mut self, peer: P, infohash: InfoHash, failure: ProofFailure) {
        // A liar once is believed nowhere: everything it proved is dropped, and nothing more is asked of it.
        self.holders.retain(|_, h| {
            h.retain(|(_, p)| *p != peer);
            !h.is_empty()
        });
        if let Some(state) = self.peers.get_mut(&peer) {
            state.backlog.clear();
            state.unchecked.clear();
        }
        self.events.push_back(ProofEvent::Failed {
            peer,
            infohash,
            failure,
        });
    }

    fn release_slot(&mut self, peer: &P) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.pending = state.pending.saturating_sub(1);
        }
    }

    fn recount_slots(&mut self) {
        for (peer, state) in self.peers.iter_mut() {
            state.pending = self.pending.values().filter(|p| p.peer == *peer).count();
        }
    }
}
