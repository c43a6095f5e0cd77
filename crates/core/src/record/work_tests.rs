//! The proof-of-work stamp seen through the record API: found, signed, validated, and the smallest nonce found.

use super::codec::body_to_value;
use super::tests::*;
use super::*;
use crate::bencode::encode;

fn body_bytes(body: &RecordBody) -> Vec<u8> {
    encode(&body_to_value(body))
}

#[test]
fn a_stamp_of_twelve_bits_is_found_signed_and_validated() {
    let signed = sign_record_with_work(body(), &key(), 12).unwrap();
    assert!(signed.work_bits() >= 12, "{}", signed.work_bits());
    assert_eq!(
        signed.work_bits(),
        work_bits_of(&body_bytes(&body()), signed.nonce())
    );
    let valid = validate_record(signed.bytes(), &ctx()).unwrap();
    assert_eq!(valid.nonce(), signed.nonce());
    assert_eq!(valid.work_bits(), signed.work_bits());
    assert_eq!(valid, signed);
    assert_eq!(signed.id(), RecordId::of_signed_bytes(signed.bytes()));
}

#[test]
fn the_nonce_found_is_the_smallest_and_always_the_same() {
    let bytes = body_bytes(&body());
    for bits in [1, 5, 9, 12] {
        let signed = sign_record_with_work(body(), &key(), bits).unwrap();
        let nonce = signed.nonce();
        assert!(
            (0..nonce).all(|n| work_bits_of(&bytes, n) < u32::from(bits)),
            "{bits} bits: a nonce below {nonce} was strong enough"
        );
        assert_eq!(sign_record_with_work(body(), &key(), bits), Ok(signed));
    }
}

#[test]
fn sign_record_is_work_of_zero_bits_with_nonce_zero() {
    let plain = sign_record(body(), &key()).unwrap();
    assert_eq!(plain.nonce(), 0);
    assert_eq!(plain.work_bits(), work_bits_of(&body_bytes(&body()), 0));
    assert_eq!(sign_record_with_work(body(), &key(), 0), Ok(plain));
}

#[test]
fn the_same_nonce_is_worth_nothing_on_another_record() {
    // Work is over the body, which holds the time and author: one second later is a different search.
    let signed = sign_record_with_work(body(), &key(), 12).unwrap();
    let later = with(|b| b.created += 1);
    assert!(work_bits_of(&body_bytes(&later), signed.nonce()) < 12);
    let restamped = sign_record_with_work(later, &key(), 12).unwrap();
    assert_ne!(restamped.nonce(), signed.nonce());
}

#[test]
fn difficulty_above_the_cap_is_refused_before_any_work() {
    assert_eq!(
        sign_record_with_work(body(), &key(), MAX_WORK_BITS + 1),
        Err(RecordError::WorkBitsTooHigh {
            requested: MAX_WORK_BITS + 1
        })
    );
    // The checks on the body still come first, as for sign_record.
    assert_eq!(
        sign_record_with_work(with(|b| b.title = String::new()), &key(), u8::MAX),
        Err(RecordError::TitleEmpty)
    );
}
