//! The frames multiplexed inside a tunnel, and the padded record plaintext that carries them. Pure codec.
//!
//! A record's plaintext is `body length (u16 BE) || body || zero padding`, padded up to the next size in
//! [`BUCKETS`], so the size of each encrypted record on the wire is one of four values whatever it carries. The
//! body is a sequence of frames:
//!
//! ```text
//! 1 Open    id u32, port u16, host length u8, host (the bridge resolves names itself)
//! 2 Opened  id u32
//! 3 Refused id u32, reason u8
//! 4 Data    id u32, length u16, bytes
//! 5 Window  id u32, increment u32   (receiver grants more send credit)
//! 6 Fin     id u32                  (sender will send no more data on this stream)
//! 7 Reset   id u32                  (stream aborted)
//! 8 Ping    nonce u64
//! 9 Pong    nonce u64
//! ```

use bytes::Bytes;
use kolokol_core::detour::MAX_HOST_BYTES;

/// Record plaintext sizes. With Noise's 16-byte tag the wire sizes are 512, 2048, 8192 and 16384 bytes (plus the
/// 2-byte masked length).
pub const BUCKETS: [usize; 4] = [512 - 16, 2048 - 16, 8192 - 16, 16384 - 16];
/// The largest record plaintext.
pub const MAX_PLAINTEXT: usize = BUCKETS[3];
/// The largest body one record carries.
pub const MAX_BODY: usize = MAX_PLAINTEXT - 2;
const DATA_HEADER: usize = 1 + 4 + 2;
/// The most data bytes one `Data` frame carries, so that one such frame always fits a record.
pub const MAX_DATA: usize = MAX_BODY - DATA_HEADER;

/// Why a stream could not be opened at the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// The name did not resolve.
    Dns,
    /// The target refused or reset the connection.
    Refused,
    /// The target did not answer in time or was unreachable.
    Unreachable,
    /// The bridge does not connect to that address (its own loopback or private network).
    Forbidden,
    /// The bridge is at its stream limit.
    Busy,
    /// Anything else (including reasons from a newer bridge).
    Other,
}

impl RefuseReason {
    fn code(self) -> u8 {
        match self {
            RefuseReason::Dns => 1,
            RefuseReason::Refused => 2,
            RefuseReason::Unreachable => 3,
            RefuseReason::Forbidden => 4,
            RefuseReason::Busy => 5,
            RefuseReason::Other => 0,
        }
    }

    fn from_code(code: u8) -> RefuseReason {
        match code {
            1 => RefuseReason::Dns,
            2 => RefuseReason::Refused,
            3 => RefuseReason::Unreachable,
            4 => RefuseReason::Forbidden,
            5 => RefuseReason::Busy,
            _ => RefuseReason::Other,
        }
    }
}

impl std::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefuseReason::Dns => "the name does not resolve at the bridge",
            RefuseReason::Refused => "the site refused the connection",
            RefuseReason::Unreachable => "the site is unreachable from the bridge",
            RefuseReason::Forbidden => "the bridge does not connect to that address",
            RefuseReason::Busy => "the bridge is busy",
            RefuseReason::Other => "the bridge could not connect",
        })
    }
}

/// One multiplexing frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Open { id: u32, host: String, port: u16 },
    Opened { id: u32 },
    Refused { id: u32, reason: RefuseReason },
    Data { id: u32, data: Bytes },
    Window { id: u32, increment: u32 },
    Fin { id: u32 },
    Reset { id: u32 },
    Ping { nonce: u64 },
    Pong { nonce: u64 },
}

/// Why a record or frame was refused. Any of these ends the tunnel: the peer holds the secret, so malformed
/// frames mean a bug or an attack, not noise.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("record plaintext of {0} bytes is not one of the padding sizes")]
    BadRecordSize(usize),
    #[error("record body length {body} does not fit in {plaintext} bytes")]
    BadBodyLength { body: usize, plaintext: usize },
    #[error("frame cut short")]
    Truncated,
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("host name in Open frame is too long or not UTF-8")]
    BadHost,
}

impl Frame {
    /// The encoded size.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Open { host, .. } => 1 + 4 + 2 + 1 + host.len(),
            Frame::Opened { .. } | Frame::Fin { .. } | Frame::Reset { .. } => 1 + 4,
            Frame::Refused { .. } => 1 + 4 + 1,
            Frame::Data { data, .. } => DATA_HEADER + data.len(),
            Frame::Window { .. } => 1 + 4 + 4,
            Frame::Ping { .. } | Frame::Pong { .. } => 1 + 8,
        }
    }

    /// Appends the frame. The caller keeps `Data` at most [`MAX_DATA`] and the host at most 253 bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Open { id, host, port } => {
                out.push(1);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&port.to_be_bytes());
                let host = &host.as_bytes()[..host.len().min(MAX_HOST_BYTES)];
                out.push(u8::try_from(host.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(host);
            }
            Frame::Opened { id } => push_id(out, 2, *id),
            Frame::Refused { id, reason } => {
                push_id(out, 3, *id);
                out.push(reason.code());
            }
            Frame::Data { id, data } => {
                push_id(out, 4, *id);
                let data = &data[..data.len().min(MAX_DATA)];
                out.extend_from_slice(&u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes());
                out.extend_from_slice(data);
            }
            Frame::Window { id, increment } => {
                push_id(out, 5, *id);
                out.extend_from_slice(&increment.to_be_bytes());
            }
            Frame::Fin { id } => push_id(out, 6, *id),
            Frame::Reset { id } => push_id(out, 7, *id),
            Frame::Ping { nonce } => {
                out.push(8);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Frame::Pong { nonce } => {
                out.push(9);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
        }
    }
}

fn push_id(out: &mut Vec<u8>, kind: u8, id: u32) {
    out.push(kind);
    out.extend_from_slice(&id.to_be_bytes());
}

/// The padded plaintext size for a body of `body_len` bytes (at most [`MAX_BODY`]).
pub fn bucket_for(body_len: usize) -> usize {
    BUCKETS
        .iter()
        .copied()
        .find(|&size| size >= body_len + 2)
        .unwrap_or(MAX_PLAINTEXT)
}

/// Wraps an encoded body (at most [`MAX_BODY`] bytes) into a padded record plaintext.
pub fn pad_body(body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(MAX_BODY)];
    let mut out = Vec::with_capacity(bucket_for(body.len()));
    out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(body);
    out.resize(bucket_for(body.len()), 0);
    out
}

/// Takes the frames out of a record plaintext.
pub fn decode_record(plaintext: &[u8]) -> Result<Vec<Frame>, FrameError> {
    if !BUCKETS.contains(&plaintext.len()) {
        return Err(FrameError::BadRecordSize(plaintext.len()));
    }
    let body_len = usize::from(u16::from_be_bytes([plaintext[0], plaintext[1]]));
    let body = plaintext
        .get(2..2 + body_len)
        .ok_or(FrameError::BadBodyLength {
            body: body_len,
            plaintext: plaintext.len(),
        })?;
    decode_frames(body)
}

/// Decodes a body: frames back to back, nothing left over.
pub fn decode_frames(mut body: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        let (frame, rest) = decode_frame(body)?;
        frames.push(frame);
        body = rest;
    }
    Ok(frames)
}

fn take(input: &[u8], n: usize) -> Result<(&[u8], &[u8]), FrameError> {
    if input.len() < n {
        return Err(FrameError::Truncated);
    }
    Ok(input.split_at(n))
}

fn take_u32(input: &[u8]) -> Result<(u32, &[u8]), FrameError> {
    let (head, rest) = take(input, 4)?;
    Ok((
        u32::from_be_bytes([head[0], head[1], head[2], head[3]]),
        rest,
    ))
}

fn take_u16(input: &[u8]) -> Result<(u16, &[u8]), FrameError> {
    let (head, rest) = take(input, 2)?;
    Ok((u16::from_be_bytes([head[0], head[1]]), rest))
}

fn take_u64(input: &[u8]) -> Result<(u64, &[u8]), FrameError> {
    let (head, rest) = take(input, 8)?;
    let mut bytes = [0; 8];
    bytes.copy_from_slice(head);
    Ok((u64::from_be_bytes(bytes), rest))
}

fn decode_frame(input: &[u8]) -> Result<(Frame, &[u8]), FrameError> {
    let (kind, rest) = take(input, 1)?;
    match kind[0] {
        1 => {
            let (id, rest) = take_u32(rest)?;
            let (port, rest) = take_u16(rest)?;
            let (len, rest) = take(rest, 1)?;
            let len = usize::from(len[0]);
            if len > MAX_HOST_BYTES {
                return Err(FrameError::BadHost);
            }
            let (host, rest) = take(rest, len)?;
            let host = std::str::from_utf8(host)
                .map_err(|_| FrameError::BadHost)?
                .to_owned();
            Ok((Frame::Open { id, host, port }, rest))
        }
        2 => take_u32(rest).map(|(id, rest)| (Frame::Opened { id }, rest)),
        3 => {
            let (id, rest) = take_u32(rest)?;
            let (reason, rest) = take(rest, 1)?;
            let reason = RefuseReason::from_code(reason[0]);
            Ok((Frame::Refused { id, reason }, rest))
        }
        4 => {
            let (id, rest) = take_u32(rest)?;
            let (len, rest) = take_u16(rest)?;
            let (data, rest) = take(rest, usize::from(len))?;
            Ok((
                Frame::Data {
                    id,
                    data: Bytes::copy_from_slice(data),
                },
                rest,
            ))
        }
        5 => {
            let (id, rest) = take_u32(rest)?;
            let (increment, rest) = take_u32(rest)?;
            Ok((Frame::Window { id, increment }, rest))
        }
        6 => take_u32(rest).map(|(id, rest)| (Frame::Fin { id }, rest)),
        7 => take_u32(rest).map(|(id, rest)| (Frame::Reset { id }, rest)),
        8 => take_u64(rest).map(|(nonce, rest)| (Frame::Ping { nonce }, rest)),
        9 => take_u64(rest).map(|(nonce, rest)| (Frame::Pong { nonce }, rest)),
        other => Err(FrameError::UnknownType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let reason = prop_oneof![
            Just(RefuseReason::Dns),
            Just(RefuseReason::Refused),
            Just(RefuseReason::Unreachable),
            Just(RefuseReason::Forbidden),
            Just(RefuseReason::Busy),
            Just(RefuseReason::Other),
        ];
        prop_oneof![
            (any::<u32>(), "[a-z0-9.]{0,60}", any::<u16>())
                .prop_map(|(id, host, port)| Frame::Open { id, host, port }),
            any::<u32>().prop_map(|id| Frame::Opened { id }),
            (any::<u32>(), reason).prop_map(|(id, reason)| Frame::Refused { id, reason }),
            (any::<u32>(), prop::collection::vec(any::<u8>(), 0..3000)).prop_map(|(id, data)| {
                Frame::Data {
                    id,
                    data: Bytes::from(data),
                }
            }),
            (any::<u32>(), any::<u32>())
                .prop_map(|(id, increment)| Frame::Window { id, increment }),
            any::<u32>().prop_map(|id| Frame::Fin { id }),
            any::<u32>().prop_map(|id| Frame::Reset { id }),
            any::<u64>().prop_map(|nonce| Frame::Ping { nonce }),
            any::<u64>().prop_map(|nonce| Frame::Pong { nonce }),
        ]
    }

    #[test]
    fn records_are_padded_to_buckets() {
        assert_eq!(pad_body(&[]).len(), BUCKETS[0]);
        assert_eq!(pad_body(&[0; 494]).len(), BUCKETS[0]);
        assert_eq!(pad_body(&[0; 495]).len(), BUCKETS[1]);
        assert_eq!(pad_body(&[0; MAX_BODY]).len(), MAX_PLAINTEXT);
        assert_eq!(
            decode_record(&[0; 100]),
            Err(FrameError::BadRecordSize(100))
        );
        let mut bad = vec![0; BUCKETS[0]];
        bad[0] = 0xff;
        assert!(matches!(
            decode_record(&bad),
            Err(FrameError::BadBodyLength { .. })
        ));
    }

    #[test]
    fn a_full_data_frame_fits_one_record() {
        let frame = Frame::Data {
            id: 1,
            data: Bytes::from(vec![1; MAX_DATA]),
        };
        let mut body = Vec::new();
        frame.encode_into(&mut body);
        assert_eq!(body.len(), MAX_BODY);
        assert_eq!(decode_record(&pad_body(&body)).unwrap(), vec![frame]);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(decode_frames(&[42]), Err(FrameError::UnknownType(42)));
        assert_eq!(
            decode_frames(&[4, 0, 0, 0, 1, 0, 9, 1]),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            decode_frames(&[1, 0, 0, 0, 1, 0, 80, 2, 0xff, 0xfe]),
            Err(FrameError::BadHost)
        );
    }

    proptest! {
        #[test]
        fn frames_round_trip_through_records(frames in prop::collection::vec(arb_frame(), 0..5)) {
            let mut body = Vec::new();
            for frame in &frames {
                frame.encode_into(&mut body);
            }
            prop_assert_eq!(body.len(), frames.iter().map(Frame::encoded_len).sum::<usize>());
            prop_assume!(body.len() <= MAX_BODY);
            let record = pad_body(&body);
            prop_assert!(BUCKETS.contains(&record.len()));
            prop_assert_eq!(decode_record(&record).unwrap(), frames);
        }

        #[test]
        fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_frames(&bytes);
            let mut record = bytes.clone();
            record.resize(BUCKETS[0], 0);
            let _ = decode_record(&record);
        }
    }
}
