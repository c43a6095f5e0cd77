//! Property tests: arbitrary valid bodies (Latin, Cyrillic, any printable Unicode) survive sign -> validate, with
//! and without proof of work, and no change to the signed bytes survives validation.

use proptest::prelude::*;

use super::*;

fn text(pattern: &'static str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(pattern).expect("valid regex")
}

fn arb_file_parts() -> impl Strategy<Value = (String, String, u64, String)> {
    (
        text("[a-zA-Zа-яА-ЯёЁ0-9 _()-]{1,12}"),
        text("[a-zA-Zа-яА-ЯёЁ0-9 ._()-]{1,30}"),
        0..=i64::MAX as u64,
        text("[a-z]{1,12}/[a-z0-9][a-z0-9.+-]{0,20}"),
    )
}

/// A valid body together with the key that authored it.
fn arb_signed_input() -> impl Strategy<Value = (Keypair, RecordBody)> {
    let head = (
        any::<[u8; 32]>(),
        text("[a-z0-9-]{1,64}"),
        0..=i64::MAX as u64,
        text("[a-zA-Zа-яА-ЯёЁ0-9][a-zA-Zа-яА-ЯёЁ0-9 ,.!?«»—-]{0,100}"),
        text("[\\PC\n\t]{0,300}"),
    );
    let tail = (
        prop::collection::vec(text("[a-zа-яё0-9][a-zа-яё0-9 ]{0,20}"), 0..=MAX_TAGS),
        prop::option::of(text("[A-Za-z0-9-]{1,16}")),
        prop::collection::vec(arb_file_parts(), 1..12),
        any::<[u8; 20]>(),
        prop::option::of((
            text("image/(png|jpeg|webp|gif)"),
            prop::collection::vec(any::<u8>(), 0..200),
        )),
    );
    (head, tail).prop_map(
        |((secret, network, created, title, description), (tags, lang, files, infohash, thumb))| {
            let key = Keypair::from_secret_bytes(secret);
            let body = RecordBody {
                network,
                author: key.public(),
                created,
                title,
                description,
                tags,
                lang,
                // All paths have two components and a unique index, so they never repeat or nest inside each other.
                files: files
                    .into_iter()
                    .enumerate()
                    .map(|(i, (dir, name, size, mime))| FileEntry {
                        path: format!("{dir}/{i}-{name}"),
                        size,
                        mime,
                    })
                    .collect(),
                infohash: InfoHash(infohash),
                thumbnail: thumb.map(|(mime, bytes)| Thumbnail { mime, bytes }),
            };
            (key, body)
        },
    )
}

fn ctx_for(body: &RecordBody) -> ValidationContext {
    ValidationContext {
        network: body.network.clone(),
        now_unix: body.created,
    }
}

proptest! {
    #[test]
    fn sign_validate_round_trip((key, body) in arb_signed_input()) {
        let signed = sign_record(body.clone(), &key).unwrap();
        prop_assert_eq!(signed.body(), &body);
        let valid = validate_record(signed.bytes(), &ctx_for(&body)).unwrap();
        prop_assert_eq!(valid, signed);
    }

    #[test]
    fn sign_with_work_validate_round_trip((key, body) in arb_signed_input(), bits in 0..=8u8) {
        let signed = sign_record_with_work(body.clone(), &key, bits).unwrap();
        prop_assert_eq!(signed.body(), &body);
        prop_assert!(signed.work_bits() >= u32::from(bits));
        let valid = validate_record(signed.bytes(), &ctx_for(&body)).unwrap();
        prop_assert_eq!(valid.work_bits(), signed.work_bits());
        prop_assert_eq!(valid, signed);
    }

    #[test]
    fn any_single_byte_change_is_refused(
        (key, body) in arb_signed_input(),
        bits in 0..=6u8,
        index in any::<prop::sample::Index>(),
        mask in 1..=255u8,
    ) {
        // A few bits of work so the nonce usually has several digits, each of which must be protected too.
        let signed = sign_record_with_work(body.clone(), &key, bits).unwrap();
        let mut bytes = signed.bytes().to_vec();
        let i = index.index(bytes.len());
        bytes[i] ^= mask;
        prop_assert!(validate_record(&bytes, &ctx_for(&body)).is_err(), "byte {} ^ {:#x} accepted", i, mask);
    }

    #[test]
    fn truncation_and_insertion_are_refused(
        (key, body) in arb_signed_input(),
        index in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let signed = sign_record(body.clone(), &key).unwrap();
        let i = index.index(signed.bytes().len());
        prop_assert!(validate_record(&signed.bytes()[..i], &ctx_for(&body)).is_err());
        let mut longer = signed.bytes().to_vec();
        longer.insert(i, byte);
        prop_assert!(validate_record(&longer, &ctx_for(&body)).is_err());
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let ctx = ValidationContext { network: "kolokol".into(), now_unix: 0 };
        let _ = validate_record(&bytes, &ctx);
    }
}
