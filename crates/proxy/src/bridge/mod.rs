//! Bridges: the server that exits traffic outside the filter, and the client pool that uses them.

pub mod pool;
pub mod server;
