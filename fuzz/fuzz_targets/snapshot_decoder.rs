//! cargo-fuzz target `snapshot_decoder`: the body is `targets::snapshot_decoder`, shared with `tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::snapshot_decoder(data));
