//! The write-ahead log: segment files of checksummed records.
//!
//! - [`record`]: one record's frame (encode, decode, checks);
//! - [`segment`]: segment naming, header, creation;
//! - [`scan`]: reading a segment and classifying its end (clean, torn tail, corruption);
//! - [`spare`]: the zeroed file the next segment is made from;
//! - [`direct`]: appending synced groups around the page cache.

pub mod direct;
pub mod record;
pub mod scan;
pub mod segment;
pub mod spare;
