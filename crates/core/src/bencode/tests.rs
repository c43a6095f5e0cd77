use super::*;
use proptest::prelude::*;

fn d(input: &[u8]) -> Result<Value, BencodeError> {
    decode(input, &DecodeLimits::default())
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..8), inner, 0..8)
                .prop_map(Value::Dict),
        ]
    })
}

#[test]
fn encodes_known_values() {
    let mut dict = Dict::new();
    dict.insert(b"spam".to_vec(), Value::from("eggs"));
    dict.insert(b"cow".to_vec(), Value::from("moo"));
    assert_eq!(encode(&Value::Dict(dict)), b"d3:cow3:moo4:spam4:eggse");
    assert_eq!(encode(&Value::Int(-42)), b"i-42e");
    assert_eq!(encode(&Value::Int(0)), b"i0e");
    assert_eq!(
        encode(&Value::List(vec![Value::from(""), Value::Int(7)])),
        b"l0:i7ee"
    );
}

#[test]
fn decodes_extreme_integers() {
    assert_eq!(d(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
    assert_eq!(d(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
    assert!(matches!(
        d(b"i9223372036854775808e"),
        Err(BencodeError::IntegerOverflow { .. })
    ));
    assert!(matches!(
        d(b"i-9223372036854775809e"),
        Err(BencodeError::IntegerOverflow { .. })
    ));
}

#[test]
fn refuses_non_canonical_integers() {
    for input in [&b"i01e"[..], b"i-0e", b"ie", b"i-e", b"i00e", b"i-01e"] {
        assert!(
            matches!(d(input), Err(BencodeError::NonCanonicalInteger { .. })),
            "{:?} gave {:?}",
            String::from_utf8_lossy(input),
            d(input)
        );
    }
    assert!(matches!(
        d(b"i+1e"),
        Err(BencodeError::UnexpectedByte { byte: b'+', .. })
    ));
    assert!(matches!(
        d(b"i1 e"),
        Err(BencodeError::UnexpectedByte { byte: b' ', .. })
    ));
}

#[test]
fn refuses_truncated_and_trailing_input() {
    for input in [
        &b""[..],
        b"i12",
        b"l",
        b"li1e",
        b"d",
        b"d1:a",
        b"4:ab",
        b"12",
    ] {
        assert!(
            d(input).is_err(),
            "{:?} should fail",
            String::from_utf8_lossy(input)
        );
    }
    assert!(matches!(
        d(b"i1ei2e"),
        Err(BencodeError::TrailingBytes { at: 3 })
    ));
    assert!(matches!(
        d(b"0:x"),
        Err(BencodeError::TrailingBytes { at: 2 })
    ));
}

#[test]
fn refuses_bad_string_lengths_before_allocating() {
    assert!(matches!(
        d(b"01:a"),
        Err(BencodeError::InvalidLength { at: 0 })
    ));
    assert!(matches!(
        d(b"5:abc"),
        Err(BencodeError::LengthExceedsInput {
            at: 0,
            len: 5,
            remaining: 3
        })
    ));
    // A length far beyond memory must be refused by comparison, not by an allocation attempt.
    assert!(matches!(
        d(b"18446744073709551615:x"),
        Err(BencodeError::LengthExceedsInput { .. })
    ));
    assert!(matches!(
        d(b"99999999999999999999999:x"),
        Err(BencodeError::InvalidLength { .. })
    ));
}

#[test]
fn refuses_unsorted_duplicate_and_non_string_keys() {
    assert!(matches!(
        d(b"d1:bi1e1:ai2ee"),
        Err(BencodeError::UnsortedKeys { at: 7 })
    ));
    assert!(matches!(
        d(b"d1:ai1e1:ai2ee"),
        Err(BencodeError::DuplicateKey { at: 7 })
    ));
    assert!(matches!(
        d(b"di1ei2ee"),
        Err(BencodeError::KeyNotBytes { at: 1 })
    ));
    // Byte order, not length order: "ab" sorts before "b".
    assert!(d(b"d2:abi1e1:bi2ee").is_ok());
}

#[test]
fn enforces_limits() {
    let limits = DecodeLimits {
        max_depth: 3,
        max_items: 5,
        max_input_bytes: 16,
    };
    assert!(decode(b"llli1eeee", &limits).is_err());
    assert!(matches!(
        decode(b"llli1eee", &limits),
        Err(BencodeError::DepthExceeded { max: 3, .. })
    ));
    assert!(decode(b"lli1eee", &limits).is_ok());
    assert!(matches!(
        decode(b"li1ei2ei3ei4ei5ee", &limits),
        Err(BencodeError::InputTooLarge { len: 17, max: 16 })
    ));
    assert!(decode(b"li1ei2ei3ei4ee", &limits).is_ok());
    assert!(matches!(
        decode(b"li1ei2ei3ei4ei5e", &limits),
        Err(BencodeError::TooManyItems { max: 5 })
    ));
    // Dictionary keys count as values too: 3 values without them, 5 with.
    let four = DecodeLimits {
        max_items: 4,
        ..limits
    };
    assert!(matches!(
        decode(b"d1:ai1e1:bi2ee", &four),
        Err(BencodeError::TooManyItems { max: 4 })
    ));
}

#[test]
fn depth_ceiling_holds_even_with_a_huge_limit() {
    let limits = DecodeLimits {
        max_depth: usize::MAX,
        max_items: usize::MAX,
        max_input_bytes: usize::MAX,
    };
    let mut deep = vec![b'l'; 100_000];
    deep.extend(vec![b'e'; 100_000]);
    assert!(matches!(
        decode(&deep, &limits),
        Err(BencodeError::DepthExceeded {
            max: MAX_DEPTH_CEILING,
            ..
        })
    ));
}

#[test]
fn field_helpers_name_the_field() {
    let Value::Dict(dict) = d(b"d1:ai1e1:b3:xyz1:c2:\xff\xfe1:dlee").unwrap() else {
        panic!("not a dict")
    };
    assert_eq!(required_int(&dict, "a"), Ok(1));
    assert_eq!(required_str(&dict, "b"), Ok("xyz"));
    assert_eq!(optional_str(&dict, "zz"), Ok(None));
    assert_eq!(required_list(&dict, "d").map(<[Value]>::len), Ok(0));
    assert_eq!(
        required_int(&dict, "q").unwrap_err().to_string(),
        "field \"q\" is missing"
    );
    assert_eq!(
        required_int(&dict, "b").unwrap_err().to_string(),
        "field \"b\" has the wrong type: expected integer, found byte string"
    );
    assert_eq!(
        required_str(&dict, "c").unwrap_err().to_string(),
        "field \"c\" is not valid UTF-8"
    );
    assert_eq!(
        reject_unknown_keys(&dict, &["a", "b", "d"])
            .unwrap_err()
            .to_string(),
        "unknown field \"c\""
    );
    assert_eq!(reject_unknown_keys(&dict, &["a", "b", "c", "d"]), Ok(()));
}

/// Small edits of a valid encoding: the inputs most likely to slip through a lax decoder.
fn mutated_encoding() -> impl Strategy<Value = Vec<u8>> {
    (
        arb_value(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..3u8,
    )
        .prop_map(|(value, index, byte, op)| {
            let mut bytes = encode(&value);
            let i = index.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, byte),
            }
            bytes
        })
}

proptest! {
    #[test]
    fn round_trips(value in arb_value()) {
        let bytes = encode(&value);
        prop_assert_eq!(d(&bytes), Ok(value));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = d(&bytes);
    }

    #[test]
    fn accepted_input_is_canonical(bytes in mutated_encoding()) {
        if let Ok(value) = d(&bytes) {
            prop_assert_eq!(encode(&value), bytes);
        }
    }

    #[test]
    fn accepted_arbitrary_input_is_canonical(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(value) = d(&bytes) {
            prop_assert_eq!(encode(&value), bytes);
        }
    }
}
