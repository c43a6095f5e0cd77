//! The bridge tunnel: handshake, obfuscation, padded records and stream multiplexing. See `DESIGN.md`.

pub mod frame;
pub mod handshake;
pub mod mux;
pub mod obfs;
pub mod record;
pub mod replay;
