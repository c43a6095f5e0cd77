//! Helpers shared by the fuzz targets in `fuzz_targets/`: how one fuzz input is cut into several messages.

/// Cuts `data` into messages, each a big-endian `u16` length then that many bytes; a length past the end takes
/// what is left. At most `max` messages, so that one input stays cheap.
pub fn chunks(mut data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while out.len() < max && data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        out.push(chunk);
        data = tail;
    }
    out
}

/// The inverse of [`chunks`], for writing seed inputs.
pub fn join_chunks<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&message[..usize::from(len)]);
    }
    out
}
