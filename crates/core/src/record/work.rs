//! The proof-of-work stamp on a record (issue 4, "Admission and spam"): a nonce chosen so that
//! `SHA-256(WORK_DOMAIN || canonical body bytes || nonce as 8 bytes big-endian)` starts with enough zero bits.
//!
//! The body bytes name the author, the network and the creation time, so work done for one record is worth nothing
//! for any other. The nonce is covered by the author's signature, so nobody else can change it (and with it the
//! record id). This module only measures and finds stamps; how many bits a record needs is a network setting that
//! the node compares with [`super::SignedRecord::work_bits`].

use sha2::{Digest, Sha256};

use super::RecordError;

/// Prefix of every work hash, so a stamp can never double as any other SHA-256 value kolokol computes.
pub const WORK_DOMAIN: &[u8] = b"kolokol/work/v1\0";

/// Stamp strength a network asks for unless configured otherwise: expected to cost about one second of one core.
///
/// Finding a stamp of `b` bits takes 2^`b` tries on average (each try succeeds with probability 2^-`b`, so the
/// actual count is spread geometrically around that mean: one publication in twenty takes over three times as long).
///
/// Measured on the development machine (2-core AMD EPYC with SHA instructions, which the `sha2` crate uses), with a
/// `--release` program outside the workspace that called [`sign_record_with_work`](super::sign_record_with_work)
/// in a loop on a typical record (469 signed bytes, a 381-byte body) for 10 s and divided the nonces tried by the
/// CPU time used: 17.0 million tries per second. Plain SHA-256 of a 300-byte message runs at 4.7 million per
/// second on the same core, but a try hashes only the one or two 64-byte blocks holding the nonce (see
/// `work_hasher`), so that figure would overstate the cost nearly fourfold. Over the 64 possible body lengths modulo 64,
/// a quarter need two blocks per try (9.8 million tries per second), for a mean of 14.3 million.
///
/// 2^24 = 16.8 million tries: 1.0 s for most lengths, 1.7 s for the two-block ones, 1.2 s on average, where 2^23
/// would be 0.6 s. A machine without SHA instructions (many phones, older laptops) should expect several times
/// longer; someone with a GPU searches hundreds of times faster. The stamp slows floods from ordinary machines; the
/// per-author rate limits and caps are the other defences.
pub const DEFAULT_WORK_BITS: u8 = 24;

/// Highest strength [`sign_record_with_work`](super::sign_record_with_work) will search for: 2^32 tries is about
/// five minutes of one core at the rate above (256 times the default), so a mistyped setting (64, 255) is refused at
/// once instead of spinning for years. Nodes should refuse a network setting above this, since they could not publish on such a network.
pub const MAX_WORK_BITS: u8 = 32;

// The default must be a difficulty this code can publish at.
const _: () = assert!(DEFAULT_WORK_BITS <= MAX_WORK_BITS);

/// The strength of the stamp `nonce` on the canonical body bytes `body_bytes`: the number of leading zero bits of
/// the work hash, from 0 to 256.
pub fn work_bits_of(body_bytes: &[u8], nonce: u64) -> u32 {
    let mut hasher = work_hasher(body_bytes);
    hasher.update(nonce.to_be_bytes());
    leading_zero_bits(&hasher.finalize().into())
}

/// A hasher that has already absorbed the domain and the body. Each try clones it and adds only the nonce, so a try
/// costs one or two SHA-256 blocks whatever the size of the record; a spammer would take the same shortcut, so an
/// honest publisher must too.
fn work_hasher(body_bytes: &[u8]) -> Sha256 {
    let mut hasher = Sha256::new();
    hasher.update(WORK_DOMAIN);
    hasher.update(body_bytes);
    hasher
}

fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut bits = 0;
    for &byte in hash {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// The smallest nonce from 0 upward whose stamp has at least `min_bits` bits. Deterministic: the same body and
/// `min_bits` always give the same nonce. Blocks the calling thread for as long as the search takes.
pub(crate) fn find_nonce(body_bytes: &[u8], min_bits: u8) -> Result<u64, RecordError> {
    if min_bits > MAX_WORK_BITS {
        return Err(RecordError::WorkBitsTooHigh {
            requested: min_bits,
        });
    }
    let base = work_hasher(body_bytes);
    // The nonce must fit the envelope's non-negative bencode integer. With at most MAX_WORK_BITS bits asked, running
    // out of 2^63 nonces has probability exp(-2^31): this bound only keeps the loop finite on paper.
    for nonce in 0..=i64::MAX as u64 {
        let mut hasher = base.clone();
        hasher.update(nonce.to_be_bytes());
        if leading_zero_bits(&hasher.finalize().into()) >= u32::from(min_bits) {
            return Ok(nonce);
        }
    }
    Err(RecordError::WorkNotFound { bits: min_bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The work hash written out in full, without the shared hasher, to check the shortcut against.
    fn independent_work_hash(body: &[u8], nonce: u64) -> [u8; 32] {
        let mut message = b"kolokol/work/v1\0".to_vec();
        message.extend_from_slice(body);
        message.extend_from_slice(&nonce.to_be_bytes());
        Sha256::digest(&message).into()
    }

    /// Leading zero bits counted one bit at a time, most significant first.
    fn independent_zero_bits(hash: &[u8; 32]) -> u32 {
        let mut count = 0;
        for i in 0..256 {
            if hash[i / 8] & (0x80 >> (i % 8)) != 0 {
                break;
            }
            count += 1;
        }
        count
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        let mut hash = [0u8; 32];
        assert_eq!(leading_zero_bits(&hash), 256);
        hash[31] = 1;
        assert_eq!(leading_zero_bits(&hash), 255);
        hash[2] = 0x10;
        assert_eq!(leading_zero_bits(&hash), 19);
        hash[0] = 0x80;
        assert_eq!(leading_zero_bits(&hash), 0);
    }

    #[test]
    fn work_bits_of_agrees_with_an_independent_computation() {
        // Bodies across the 64-byte block boundary, so the shared hasher is tried with every buffering state.
        for len in [0usize, 1, 39, 40, 47, 48, 55, 56, 63, 64, 300, 4096] {
            let body: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            for nonce in [0u64, 1, 255, 256, 1 << 32, i64::MAX as u64] {
                assert_eq!(
                    work_bits_of(&body, nonce),
                    independent_zero_bits(&independent_work_hash(&body, nonce)),
                    "len {len} nonce {nonce}"
                );
            }
        }
    }

    #[test]
    fn find_nonce_returns_the_smallest_nonce_strong_enough() {
        let body = b"d5:titlei1ee";
        for bits in [0u8, 1, 4, 8, 12] {
            let nonce = find_nonce(body, bits).unwrap();
            let strength = |n| independent_zero_bits(&independent_work_hash(body, n));
            assert!(strength(nonce) >= u32::from(bits), "bits {bits}");
            assert!(
                (0..nonce).all(|n| strength(n) < u32::from(bits)),
                "bits {bits}: a smaller nonce than {nonce} would do"
            );
            assert_eq!(find_nonce(body, bits), Ok(nonce));
        }
        assert_eq!(find_nonce(body, 0), Ok(0));
    }

    #[test]
    fn a_difficulty_above_the_cap_is_refused_at_once() {
        assert_eq!(
            find_nonce(b"x", MAX_WORK_BITS + 1),
            Err(RecordError::WorkBitsTooHigh {
                requested: MAX_WORK_BITS + 1
            })
        );
        assert_eq!(
            find_nonce(b"x", u8::MAX),
            Err(RecordError::WorkBitsTooHigh { requested: 255 })
        );
        assert_eq!(
            RecordError::WorkBitsTooHigh { requested: 40 }.to_string(),
            "proof-of-work difficulty of 40 bits is above the 32-bit limit"
        );
    }
}
