//! Several policy cores wired together in memory ([`super::pair::Net`]): sync, relay, admission, held-back
//! publications, requests and misbehaving peers, end to end through the state machine.

use std::collections::BTreeSet;
use std::time::Duration;

use super::pair::{Net, Wire};
use super::{PolicyConfig, RecordId};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Cores 0..n connected in a ring, each also to the node 3 places on (degree 4).
fn ring(config: &PolicyConfig, n: u32) -> Net {
    let mut net = Net::new(config, n, 0);
    for a in 0..n {
        net.connect(a, (a + 1) % n);
        net.connect(a, (a + 3) % n);
    }
    // The reconciliations that connecting starts are over (the periodic ones come 15 s or more later).
    net.run_for(secs(1));
    net
}

fn holders(net: &Net, n: u32, id: &RecordId) -> usize {
    (0..n)
        .filter(|m| net.core(*m).store.contains_key(id))
        .count()
}

#[test]
fn two_cores_sync_their_catalogs_on_connect() {
    let config = PolicyConfig::default();
    let mut net = Net::new(&config, 2, 0);
    // Old catalogs: never pushed, only reconciliation can carry them.
    for n in 0..2u32 {
        for _ in 0..30 + 20 * n {
            let rec = net.new_record(secs(86_400));
            net.nodes[n as usize]
                .as_mut()
                .unwrap()
                .store
                .insert(rec.id, rec);
        }
    }
    net.connect(0, 1);
    net.run_for(secs(10));
    assert_eq!(net.core(0).store.len(), 80);
    assert_eq!(net.core(0).store, net.core(1).store);
    // Old records are stored but relayed by nobody: each crossed the link once, whole.
    for id in net.core(0).store.keys() {
        assert_eq!(net.whole_copies(0, id) + net.whole_copies(1, id), 1);
    }
}

#[test]
fn a_publication_reaches_every_core_once_with_a_bounded_fanout() {
    let config = PolicyConfig::default();
    let n = 16;
    let mut net = ring(&config, n);
    let id = net.publish(5, false);
    net.run_for(secs(5));
    assert_eq!(holders(&net, n, &id), n as usize);
    for m in 0..n {
        // Each core received the record whole exactly once (announced by id, requested once).
        if m != 5 {
            assert_eq!(net.whole_copies(m, &id), 1, "node {m}");
        }
        // And named it to at most its fanout: forwarded once, plus answers to requests.
        let announces = net
            .mentions_by(m, &id)
            .iter()
            .filter(|d| matches!(d.wire, Wire::Announce(_)))
            .count();
        assert!(announces <= config.announce_fanout, "node {m}: {announces}");
    }
}

#[test]
fn eager_push_relays_whole_records_once_per_core() {
    let config = PolicyConfig {
        eager_fanout: 2,
        announce_fanout: 0,
        ..PolicyConfig::default()
    };
    let n = 12;
    let mut net = ring(&config, n);
    let id = net.publish(0, false);
    net.run_for(secs(5));
    assert!(holders(&net, n, &id) > 2);
    for m in 0..n {
        let sent = net.mentions_by(m, &id).len();
        // The publisher sends to its two picks; every other core relays once, to at most two peers.
        assert!(sent <= 2, "node {m} sent the record {sent} times");
    }
    // Whatever random push missed, reconciliation brings.
    net.run_for(secs(120));
    assert_eq!(holders(&net, n, &id), n as usize);
}

#[test]
fn a_relay_goes_to_the_fanout_never_back_to_the_sender() {
    let config = PolicyConfig {
        eager_fanout: 1,
        announce_fanout: 4,
        ..PolicyConfig::default()
    };
    // Core 0 with twelve raw peers (1..=12).
    let mut net = Net::new(&config, 1, 12);
    for peer in 1..=12 {
        net.connect(peer, 0);
    }
    let rec = net.new_record(secs(10));
    net.send(3, 0, Wire::Records(vec![rec]));
    net.run_for(secs(1));
    let sent = net.mentions_by(0, &rec.id);
    let targets: BTreeSet<u32> = sent.iter().map(|d| d.to).collect();
    assert_eq!(sent.len(), 5);
    assert_eq!(targets.len(), 5);
    assert!(!targets.contains(&3));
    let whole = sent
        .iter()
        .filter(|d| matches!(d.wire, Wire::Records(_)))
        .count();
    assert_eq!(whole, 1);
    // The same record again, from another peer and from the first: nothing more goes out.
    net.send(3, 0, Wire::Records(vec![rec]));
    net.send(7, 0, Wire::Records(vec![rec]));
    net.run_for(secs(1));
    assert_eq!(net.mentions_by(0, &rec.id).len(), 5);
}

#[test]
fn old_records_are_stored_but_not_relayed() {
    let config = PolicyConfig::default();
    let mut net = Net::new(&config, 1, 4);
    for peer in 1..=4 {
        net.connect(peer, 0);
    }
    let old = net.new_record(config.relay_max_age + secs(1));
    let young = net.new_record(config.relay_max_age - secs(1));
    net.send(1, 0, Wire::Records(vec![old, young]));
    net.run_for(secs(1));
    assert!(net.core(0).store.contains_key(&old.id));
    assert!(net.mentions_by(0, &old.id).is_empty());
    assert_eq!(net.mentions_by(0, &young.id).len(), 3);
}

#[test]
fn refused_records_are_not_stored_relayed_refetched_or_held_against_the_sender() {
    let config = PolicyConfig::default();
    let mut net = Net::new(&config, 2, 1);
    net.connect(2, 0);
    let rec = net.new_record(secs(1));
    net.nodes[0].as_mut().unwrap().refuses.insert(rec.id);
    for _ in 0..=config.max_bad_records + 5 {
        net.send(2, 0, Wire::Records(vec![rec]));
    }
    net.run_for(secs(1));
    assert!(!net.core(0).store.contains_key(&rec.id));
    assert!(net.core(0).policy.was_refused(&rec.id));
    assert!(net.mentions_by(0, &rec.id).is_empty());
    // Not the sender's fault: it stays connected.
    assert!(net.is_linked(0, 2));
    // A peer that holds it: reconciliation finds it, and it is not asked for.
    net.nodes[1].as_mut().unwrap().store.insert(rec.id, rec);
    net.connect(0, 1);
    net.run_for(secs(5));
    assert!(net.mentions_by(0, &rec.id).is_empty());
    assert!(!net.core(0).store.contains_key(&rec.id));
}

#[test]
fn a_held_back_publication_is_not_served_offered_or_relayed_until_released() {
    let config = PolicyConfig::default();
    let mut net = Net::new(&config, 3, 0);
    net.connect(0, 1);
    net.connect(1, 2);
    let id = net.publish(0, true);
    net.run_for(secs(2));
    // A peer that asks for it by id (it learned the id some other way) gets nothing.
    net.send(1, 0, Wire::Request(vec![id]));
    // Reconciliation runs again and again: it is not offered.
    net.run_for(secs(120));
    assert!(net.mentions_by(0, &id).is_empty());
    assert_eq!(holders(&net, 3, &id), 1);
    assert!(net.core(0).policy.is_held_back(&id));

    net.release(0, id);
    net.run_for(secs(5));
    assert!(!net.core(0).policy.is_held_back(&id));
    assert_eq!(holders(&net, 3, &id), 3);
    // Released, it went out like a new publication: whole, once, to the publisher's peer.
    assert_eq!(net.whole_copies(1, &id), 1);
}

#[test]
fn an_unanswered_request_goes_to_the_next_holder() {
    let config = PolicyConfig::default();
    // Core 0, core 1 (holds the record), raw peer 2 (announces it and never answers).
    let mut net = Net::new(&config, 2, 1);
    net.connect(2, 0);
    net.connect(1, 0);
    let rec = net.new_record(secs(1));
    net.nodes[1].as_mut().unwrap().store.insert(rec.id, rec);
    net.send(2, 0, Wire::Announce(vec![rec.id]));
    net.run_for(Duration::from_millis(60));
    net.send(1, 0, Wire::Announce(vec![rec.id]));
    net.run_for(secs(1));
    // Asked the first announcer only, and it is silent.
    assert!(!net.core(0).store.contains_key(&rec.id));
    let asked: Vec<u32> = net.mentions_by(0, &rec.id).iter().map(|d| d.to).collect();
    assert_eq!(asked, vec![2]);
    net.run_for(config.request_timeout + secs(1));
    assert!(net.core(0).store.contains_key(&rec.id));
    assert_eq!(net.whole_copies(0, &rec.id), 1);
}

#[test]
fn a_peer_sending_junk_is_disconnected_after_the_limit() {
    let config = PolicyConfig::default();
    let mut net = Net::new(&config, 1, 2);
    net.connect(1, 0);
    net.connect(2, 0);
    for n in 0..config.max_bad_records {
        let mut junk = net.new_record(secs(0));
        junk.valid = false;
        net.send(1, 0, Wire::Records(vec![junk]));
        net.run_for(Duration::from_millis(100));
        assert!(net.is_linked(0, 1), "cut off after {n} bad records");
    }
    let mut junk = net.new_record(secs(0));
    junk.valid = false;
    net.send(1, 0, Wire::Records(vec![junk]));
    net.run_for(Duration::from_millis(100));
    assert!(!net.is_linked(0, 1));
    assert!(net.is_linked(0, 2));
    // Nothing invalid was stored or relayed.
    assert!(net.core(0).store.is_empty());
    assert!(net.log.iter().all(|d| d.from == 1));
}

#[test]
fn announcement_floods_and_duplicates_stay_bounded() {
    let config = PolicyConfig {
        max_pending: 64,
        ..PolicyConfig::default()
    };
    let mut net = Net::new(&config, 1, 2);
    net.connect(1, 0);
    net.connect(2, 0);
    // Ten thousand ids announced by a peer that never answers.
    let ids: Vec<RecordId> = (0..10_000).map(|_| net.new_record(secs(0)).id).collect();
    net.send(1, 0, Wire::Announce(ids.clone()));
    net.run_for(secs(1));
    assert_eq!(net.core(0).policy.counts().pending, 64);
    let requests = net.log.iter().filter(|d| d.from == 0).count();
    assert_eq!(requests, 64);
    // Forgotten after the time-out (no other holder): the table empties.
    net.run_for(config.request_timeout + secs(1));
    assert_eq!(net.core(0).policy.counts().pending, 0);
    // A record sent a hundred times by the same peer is stored once and relayed once.
    let rec = net.new_record(secs(0));
    for _ in 0..100 {
        net.send(1, 0, Wire::Records(vec![rec]));
    }
    net.run_for(secs(1));
    assert_eq!(net.mentions_by(0, &rec.id).len(), 1);
    assert!(net.is_linked(0, 1));
}
