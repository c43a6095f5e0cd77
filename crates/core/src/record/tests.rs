//! Unit tests: round trips, context checks, hand-made non-canonical encodings; helpers shared with `bounds_tests`.

use super::codec::{body_to_value, envelope, signed_message};
use super::*;
use crate::bencode::{BencodeError, Dict, FieldError, Value, encode};
use crate::keys::KeyError;

pub(super) const NOW: u64 = 1_700_000_000;

pub(super) fn key() -> Keypair {
    Keypair::from_secret_bytes([42; 32])
}

pub(super) fn ctx() -> ValidationContext {
    ValidationContext {
        network: "kolokol".into(),
        now_unix: NOW,
    }
}

pub(super) fn body() -> RecordBody {
    RecordBody {
        network: "kolokol".into(),
        author: key().public(),
        created: NOW,
        title: "Митинг на площади".into(),
        description: "Снято сегодня.\n\tВторая строка.".into(),
        tags: vec!["протест".into(), "video".into()],
        lang: Some("ru".into()),
        files: vec![FileEntry {
            path: "video/митинг.mp4".into(),
            size: 123_456_789,
            mime: "video/mp4".into(),
        }],
        infohash: InfoHash([7; 20]),
        thumbnail: Some(Thumbnail {
            mime: "image/jpeg".into(),
            bytes: vec![0xff, 0xd8, 0xff],
        }),
    }
}

/// Signs body bytes and nonce exactly as given, skipping every check: the way a hostile or buggy node would.
pub(super) fn sign_raw_with_nonce(body_bytes: &[u8], nonce: u64, key: &Keypair) -> Vec<u8> {
    envelope(
        body_bytes,
        nonce,
        &key.sign(&signed_message(body_bytes, nonce)),
    )
}

/// [`sign_raw_with_nonce`] with nonce 0, what `sign_record` uses.
pub(super) fn sign_raw_body_bytes(body_bytes: &[u8], key: &Keypair) -> Vec<u8> {
    sign_raw_with_nonce(body_bytes, 0, key)
}

pub(super) fn sign_raw(body: &RecordBody) -> Vec<u8> {
    sign_raw_body_bytes(&encode(&body_to_value(body)), &key())
}

/// A body that breaks a bound must be refused both when signing and when received already signed.
pub(super) fn assert_refused(body: RecordBody, expected: RecordError) {
    assert_eq!(
        sign_record(body.clone(), &key()).map(|_| ()),
        Err(expected.clone())
    );
    assert_eq!(
        validate_record(&sign_raw(&body), &ctx()).map(|_| ()),
        Err(expected)
    );
}

pub(super) fn assert_accepted(body: RecordBody) {
    let ctx = ValidationContext {
        network: body.network.clone(),
        ..ctx()
    };
    let signed = sign_record(body, &key()).expect("sign_record refused a valid body");
    assert_eq!(validate_record(signed.bytes(), &ctx), Ok(signed));
}

pub(super) fn with(edit: impl FnOnce(&mut RecordBody)) -> RecordBody {
    let mut b = body();
    edit(&mut b);
    b
}

pub(super) fn file(path: &str) -> FileEntry {
    FileEntry {
        path: path.into(),
        size: 1,
        mime: "application/octet-stream".into(),
    }
}

#[test]
fn sign_then_validate_round_trips() {
    let signed = sign_record(body(), &key()).unwrap();
    assert_eq!(signed.id(), RecordId::of_signed_bytes(signed.bytes()));
    assert_eq!(signed.bytes()[..7], *b"d4:body");
    let valid = validate_record(signed.bytes(), &ctx()).unwrap();
    assert_eq!(valid, signed);
    assert_eq!(valid.into_body(), body());
}

#[test]
fn envelope_is_the_canonical_encoding_of_the_outer_dict() {
    for bits in [0, 10] {
        let signed = sign_record_with_work(body(), &key(), bits).unwrap();
        let mut top = Dict::new();
        top.insert(b"body".to_vec(), body_to_value(&body()));
        top.insert(b"pow".to_vec(), Value::Int(signed.nonce() as i64));
        top.insert(b"sig".to_vec(), Value::Bytes(signed.signature().to_vec()));
        assert_eq!(encode(&Value::Dict(top)), signed.bytes());
    }
}

#[test]
fn optional_fields_are_omitted_when_absent() {
    let signed = sign_record(with(|b| (b.lang, b.thumbnail) = (None, None)), &key()).unwrap();
    let text = String::from_utf8_lossy(signed.bytes());
    assert!(
        !text.contains("4:lang") && !text.contains("9:thumbnail"),
        "{text}"
    );
    assert_eq!(
        validate_record(signed.bytes(), &ctx()).unwrap().body().lang,
        None
    );
}

#[test]
fn json_view_uses_hex_ids_and_skips_thumbnail_bytes() {
    let json = serde_json::to_value(body()).unwrap();
    assert_eq!(json["author"], key().public().to_string());
    assert_eq!(json["infohash"], "07".repeat(20));
    assert_eq!(
        json["thumbnail"],
        serde_json::json!({ "mime": "image/jpeg" })
    );
    assert_eq!(json["files"][0]["size"], 123_456_789);
}

#[test]
fn context_checks() {
    let signed = sign_record(body(), &key()).unwrap();
    let other_net = ValidationContext {
        network: "other".into(),
        ..ctx()
    };
    assert_eq!(
        validate_record(signed.bytes(), &other_net),
        Err(RecordError::WrongNetwork {
            record: "kolokol".into(),
            expected: "other".into()
        })
    );
    let at = |now_unix| ValidationContext { now_unix, ..ctx() };
    assert!(validate_record(signed.bytes(), &at(NOW - MAX_CLOCK_SKEW_SECS)).is_ok());
    assert_eq!(
        validate_record(signed.bytes(), &at(NOW - MAX_CLOCK_SKEW_SECS - 1)),
        Err(RecordError::CreatedInFuture {
            created: NOW,
            now: NOW - 3601
        })
    );
    // Old records stay valid; a clock near the end of time must not overflow.
    assert!(validate_record(signed.bytes(), &at(u64::MAX)).is_ok());
}

#[test]
fn wrong_author_key_is_refused() {
    let other = Keypair::from_secret_bytes([9; 32]);
    assert_eq!(
        sign_record(body(), &other).map(|_| ()),
        Err(RecordError::AuthorMismatch {
            author: key().public(),
            key: other.public()
        })
    );
    // Signed by someone else while naming `key()` as author.
    let forged = sign_raw_body_bytes(&encode(&body_to_value(&body())), &other);
    assert_eq!(
        validate_record(&forged, &ctx()),
        Err(RecordError::BadSignature(KeyError::BadSignature))
    );
    // An author field that is not a curve point.
    let mut bad_point = [0u8; 32];
    bad_point[0] = 2;
    let bytes = sign_raw(&with(|b| {
        b.author = crate::keys::PublicKey::from_bytes(bad_point)
    }));
    assert_eq!(
        validate_record(&bytes, &ctx()),
        Err(RecordError::BadSignature(KeyError::InvalidPublicKey))
    );
}

#[test]
fn messages_are_readable() {
    assert_eq!(RecordError::TitleEmpty.to_string(), "title is empty");
    assert_eq!(
        RecordError::DescriptionTooLong.to_string(),
        "description is longer than 8192 bytes"
    );
    assert_eq!(
        RecordError::TagTooLong { index: 2 }.to_string(),
        "tag #3 is longer than 64 bytes"
    );
    assert_eq!(
        RecordError::FilePathBadComponent("a/../b\u{1b}".into()).to_string(),
        "file path \"a/../b\\u{1b}\" has an empty, \".\" or \"..\" component"
    );
}

/// Re-signs a body dictionary after an edit, so any refusal is due to the edit and not to the signature.
fn resigned(edit: impl FnOnce(&mut Dict)) -> Vec<u8> {
    let Value::Dict(mut d) = body_to_value(&body()) else {
        unreachable!()
    };
    edit(&mut d);
    sign_raw_body_bytes(&encode(&Value::Dict(d)), &key())
}

/// Re-signs the canonical body bytes after a textual replacement.
fn resigned_text(from: &str, to: &str) -> Vec<u8> {
    let text = encode(&body_to_value(&body()));
    let needle = from.as_bytes();
    let at = text
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern not in body");
    let edited = [&text[..at], to.as_bytes(), &text[at + needle.len()..]].concat();
    sign_raw_body_bytes(&edited, &key())
}

#[test]
fn non_canonical_and_malformed_encodings_are_refused() {
    let v = |bytes: Vec<u8>| validate_record(&bytes, &ctx());
    assert!(matches!(
        v(resigned_text("i1700000000e", "i01700000000e")),
        Err(RecordError::Encoding(
            BencodeError::NonCanonicalInteger { .. }
        ))
    ));
    assert!(matches!(
        v(resigned_text("5:title", "05:title")),
        Err(RecordError::Encoding(BencodeError::InvalidLength { .. }))
    ));
    // Swap "title" and "tags" order: same content, keys out of order.
    let body_text = encode(&body_to_value(&body()));
    let tags_at = body_text.windows(6).position(|w| w == b"4:tags").unwrap();
    let title_at = body_text.windows(7).position(|w| w == b"5:title").unwrap();
    let v_at = body_text.windows(3).position(|w| w == b"1:v").unwrap();
    let swapped = [
        &body_text[..tags_at],
        &body_text[title_at..v_at],
        &body_text[tags_at..title_at],
        &body_text[v_at..],
    ]
    .concat();
    assert!(matches!(
        v(sign_raw_body_bytes(&swapped, &key())),
        Err(RecordError::Encoding(BencodeError::UnsortedKeys { .. }))
    ));
    assert_eq!(
        v(resigned(|d| {
            d.insert(b"extra".to_vec(), Value::Int(1));
        })),
        Err(RecordError::Schema(FieldError::UnknownKey {
            field: "extra".into()
        }))
    );
    assert_eq!(
        v(resigned(|d| {
            d.remove(b"description".as_slice());
        })),
        Err(RecordError::Schema(FieldError::Missing {
            field: "description".into()
        }))
    );
    assert_eq!(
        v(resigned(|d| {
            d.insert(b"v".to_vec(), Value::Int(2));
            d.insert(b"future".to_vec(), Value::Int(1));
        })),
        Err(RecordError::UnsupportedVersion(2))
    );
    assert_eq!(
        v(resigned(|d| {
            d.insert(b"created".to_vec(), Value::Int(-1));
        })),
        Err(RecordError::IntegerOutOfRange {
            field: "creation time".into()
        })
    );
    assert!(matches!(
        v(resigned(|d| {
            d.insert(b"title".to_vec(), Value::Bytes(vec![0xd0]));
        })),
        Err(RecordError::Schema(FieldError::NotUtf8 { .. }))
    ));
    assert_eq!(
        v(resigned(|d| {
            d.insert(b"tags".to_vec(), Value::List(vec![Value::Int(5)]));
        })),
        Err(RecordError::Schema(FieldError::WrongType {
            field: "tags[0]".into(),
            expected: "byte string",
            found: "integer"
        }))
    );
    assert_eq!(
        v(resigned(|d| {
            d.insert(b"infohash".to_vec(), Value::Bytes(vec![0; 19]));
        })),
        Err(RecordError::WrongLength {
            field: "infohash",
            expected: 20,
            actual: 19
        })
    );
}

/// The envelope dictionary of a record, for tests that take it apart.
fn envelope_dict(signed: &SignedRecord) -> Dict {
    let mut top = Dict::new();
    top.insert(b"body".to_vec(), body_to_value(signed.body()));
    top.insert(b"pow".to_vec(), Value::Int(signed.nonce() as i64));
    top.insert(b"sig".to_vec(), Value::Bytes(signed.signature().to_vec()));
    top
}

#[test]
fn malformed_envelopes_are_refused() {
    let signed = sign_record(body(), &key()).unwrap();
    let v = |bytes: &[u8]| validate_record(bytes, &ctx());
    let mut trailing = signed.bytes().to_vec();
    trailing.push(b'e');
    assert!(matches!(
        v(&trailing),
        Err(RecordError::Encoding(BencodeError::TrailingBytes { .. }))
    ));
    assert_eq!(v(b"le"), Err(RecordError::NotADictionary));
    let mut top = envelope_dict(&signed);
    top.insert(
        b"sig".to_vec(),
        Value::Bytes(signed.signature()[..63].to_vec()),
    );
    assert_eq!(
        v(&encode(&Value::Dict(top))),
        Err(RecordError::WrongLength {
            field: "signature",
            expected: 64,
            actual: 63
        })
    );
    let mut top = envelope_dict(&signed);
    top.insert(b"zzz".to_vec(), Value::Int(0));
    assert_eq!(
        v(&encode(&Value::Dict(top))),
        Err(RecordError::Schema(FieldError::UnknownKey {
            field: "zzz".into()
        }))
    );
    assert_eq!(
        v(&vec![b'x'; MAX_RECORD_BYTES + 1]),
        Err(RecordError::TooLarge {
            len: MAX_RECORD_BYTES + 1
        })
    );
    assert!(v(&signed.bytes()[..signed.bytes().len() - 1]).is_err());
}

#[test]
fn malformed_nonces_are_refused() {
    let signed = sign_record(body(), &key()).unwrap();
    let v = |edit: &dyn Fn(&mut Dict)| {
        let mut top = envelope_dict(&signed);
        edit(&mut top);
        validate_record(&encode(&Value::Dict(top)), &ctx())
    };
    assert_eq!(
        v(&|top| {
            top.remove(b"pow".as_slice());
        }),
        Err(RecordError::Schema(FieldError::Missing {
            field: "pow".into()
        }))
    );
    assert_eq!(
        v(&|top| {
            top.insert(b"pow".to_vec(), Value::Bytes(vec![0; 8]));
        }),
        Err(RecordError::Schema(FieldError::WrongType {
            field: "pow".into(),
            expected: "integer",
            found: "byte string"
        }))
    );
    for negative in [-1, i64::MIN] {
        assert_eq!(
            v(&|top| {
                top.insert(b"pow".to_vec(), Value::Int(negative));
            }),
            Err(RecordError::IntegerOutOfRange {
                field: "proof-of-work nonce".into()
            })
        );
    }
    // Written by hand: past i64::MAX, leading zeros, negative zero.
    let with_pow = |pow: &str| {
        let text = signed.bytes();
        let at = text.windows(8).position(|w| w == b"3:powi0e").unwrap();
        [&text[..at + 6], pow.as_bytes(), &text[at + 7..]].concat()
    };
    assert!(matches!(
        validate_record(&with_pow("9223372036854775808"), &ctx()),
        Err(RecordError::Encoding(BencodeError::IntegerOverflow { .. }))
    ));
    assert!(matches!(
        validate_record(&with_pow("99999999999999999999999"), &ctx()),
        Err(RecordError::Encoding(BencodeError::IntegerOverflow { .. }))
    ));
    for non_canonical in ["00", "-0", ""] {
        assert!(
            matches!(
                validate_record(&with_pow(non_canonical), &ctx()),
                Err(RecordError::Encoding(
                    BencodeError::NonCanonicalInteger { .. }
                ))
            ),
            "{non_canonical:?}"
        );
    }
    assert_eq!(with_pow("0"), signed.bytes());
}

#[test]
fn the_largest_nonce_is_accepted() {
    let body_bytes = encode(&body_to_value(&body()));
    let bytes = sign_raw_with_nonce(&body_bytes, i64::MAX as u64, &key());
    let valid = validate_record(&bytes, &ctx()).unwrap();
    assert_eq!(valid.nonce(), i64::MAX as u64);
    assert_eq!(
        valid.work_bits(),
        work_bits_of(&body_bytes, i64::MAX as u64)
    );
}

#[test]
fn a_nonce_changed_after_signing_is_refused() {
    let signed = sign_record_with_work(body(), &key(), 8).unwrap();
    let body_bytes = encode(&body_to_value(&body()));
    // Someone else finds a stronger stamp (or any other nonce) and keeps the author's signature: a new id would
    // be born without the author, so the signature must not verify.
    let stronger = (signed.nonce() + 1..)
        .find(|&n| work_bits_of(&body_bytes, n) > signed.work_bits())
        .unwrap();
    let others = [0, signed.nonce() ^ 1, signed.nonce() + 1, stronger];
    for nonce in others.into_iter().filter(|&n| n != signed.nonce()) {
        let restamped = envelope(&body_bytes, nonce, signed.signature());
        assert_eq!(
            validate_record(&restamped, &ctx()),
            Err(RecordError::BadSignature(KeyError::BadSignature)),
            "nonce {nonce}"
        );
    }
    // A signature over the body alone, as the envelope without a stamp was signed, does not verify either.
    let body_only = key().sign(&[SIGNATURE_DOMAIN, &body_bytes].concat());
    assert_eq!(
        validate_record(&envelope(&body_bytes, 0, &body_only), &ctx()),
        Err(RecordError::BadSignature(KeyError::BadSignature))
    );
}
