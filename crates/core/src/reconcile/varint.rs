//! Variable-length unsigned integers as Negentropy writes them: base-128 digits, most significant first, the
//! high bit set on every byte but the last, as few digits as possible.

/// Longest encoding of a `u64` (ceil(64 / 7) digits).
pub(crate) const MAX_VARINT_BYTES: usize = 10;

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ended inside the number.
    #[error("input ends inside a varint")]
    Truncated,
    /// The number has a leading zero digit (it is not in its one shortest form).
    #[error("varint is not minimally encoded")]
    NotMinimal,
    /// The number does not fit in 64 bits.
    #[error("varint does not fit in 64 bits")]
    Overflow,
}

/// Appends `value` to `out`.
pub(crate) fn write(value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; MAX_VARINT_BYTES];
    let mut n = value;
    let mut len = 0;
    loop {
        digits[len] = (n & 0x7f) as u8;
        len += 1;
        n >>= 7;
        if n == 0 {
            break;
        }
    }
    for i in (0..len).rev() {
        let continuation = if i == 0 { 0 } else { 0x80 };
        out.push(digits[i] | continuation);
    }
}

/// Number of bytes [`write`] produces for `value`.
#[cfg(test)]
pub(crate) fn len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Reads one varint from the front of `input`, advancing it.
pub(crate) fn read(input: &mut &[u8]) -> Result<u64, VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        if i == 0 && byte == 0x80 {
            return Err(VarintError::NotMinimal);
        }
        if value > (u64::MAX >> 7) {
            return Err(VarintError::Overflow);
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    Err(VarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0]),
            (127, &[0x7f]),
            (128, &[0x81, 0x00]),
            (300, &[0x82, 0x2c]),
            (
                u64::MAX,
                &[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            ),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            write(value, &mut out);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(len(value), bytes.len());
            let mut input = bytes;
            assert_eq!(read(&mut input), Ok(value));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn refuses_bad_forms() {
        assert_eq!(read(&mut &[0x80, 0x01][..]), Err(VarintError::NotMinimal));
        assert_eq!(read(&mut &[0x81][..]), Err(VarintError::Truncated));
        assert_eq!(read(&mut &[][..]), Err(VarintError::Truncated));
        // 2^64 needs 65 bits.
        assert_eq!(
            read(&mut &[0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00][..]),
            Err(VarintError::Overflow)
        );
    }

    proptest! {
        #[test]
        fn roundtrip(value: u64, tail: Vec<u8>) {
            let mut out = Vec::new();
            write(value, &mut out);
            prop_assert_eq!(out.len(), len(value));
            out.extend_from_slice(&tail);
            let mut input = &out[..];
            prop_assert_eq!(read(&mut input), Ok(value));
            prop_assert_eq!(input, &tail[..]);
        }

        #[test]
        fn decoding_then_encoding_gives_the_same_bytes(bytes: Vec<u8>) {
            let mut input = &bytes[..];
            if let Ok(value) = read(&mut input) {
                let used = bytes.len() - input.len();
                let mut out = Vec::new();
                write(value, &mut out);
                prop_assert_eq!(&out[..], &bytes[..used]);
            }
        }
    }
}
