//! What the store holds: the collections, their key encoding, and the logical operations
//! a transaction records in the WAL.

pub(crate) mod encoded;
pub mod fingerprint;
pub mod keys;
pub mod op;
pub mod value;
