//! Reconciliation frames from peers: `reconcile::decode` never panics and what it accepts re-encodes to the same
//! bytes; a `Responder` and an `Initiator` over a small catalog take any sequence of frames without panicking,
//! and a refused frame ends the session.
//!
//! Input: one byte choosing the catalog size, then frames as `u16` length + bytes (see `kolokol_fuzz::chunks`).
#![no_main]

use kolokol_core::RecordId;
use kolokol_core::reconcile::{Initiator, Item, ReconcileConfig, Responder, VecStorage, decode};
use kolokol_fuzz::chunks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let storage = catalog(usize::from(size));
    let config = ReconcileConfig {
        frame_size_limit: kolokol_core::reconcile::MIN_FRAME_SIZE_LIMIT,
        buckets: 4,
        id_list_threshold: 8,
        max_rounds: 16,
        ..ReconcileConfig::default()
    };
    let mut responder = Responder::new(config.clone()).expect("valid config");
    let mut initiator = Initiator::new(config).expect("valid config");
    initiator
        .initiate(&storage)
        .expect("an in-memory catalog does not fail");
    for frame in chunks(rest, 32) {
        if let Ok(message) = decode(frame) {
            assert_eq!(message.encode(), frame, "an accepted frame is canonical");
        }
        let answered = responder.handle(&storage, frame);
        if answered.is_err() {
            assert!(responder.is_failed());
        }
        let before = (initiator.have().clone(), initiator.need().clone());
        match initiator.handle(&storage, frame) {
            Ok(step) => {
                assert!(step.have.iter().all(|id| initiator.have().contains(id)));
                assert!(step.need.iter().all(|id| initiator.need().contains(id)));
                // Whatever the peer claims, `have` names only records we hold: the driver loads and sends them.
                // (`need` may name records we hold: a hostile peer can list one of our ids in a range where our
                // copy's timestamp does not fall; only honest sessions promise `need` = theirs minus ours.)
                assert!(step.have.iter().all(|id| contains(&storage, id)));
            }
            Err(_) => {
                assert!(initiator.is_finished());
                assert_eq!((initiator.have().clone(), initiator.need().clone()), before);
            }
        }
    }
});

/// `n` records with a few equal timestamps, so that bounds need id prefixes.
fn catalog(n: usize) -> VecStorage {
    VecStorage::from_items((0..n).map(|i| {
        let mut id = [0u8; 32];
        id[0] = (i % 7) as u8;
        id[1] = i as u8;
        id[31] = 1;
        Item::new(1_700_000_000 + (i / 3) as u64, RecordId(id))
    }))
    .expect("distinct items")
}

fn contains(storage: &VecStorage, id: &RecordId) -> bool {
    storage.items().iter().any(|item| item.id == *id)
}
