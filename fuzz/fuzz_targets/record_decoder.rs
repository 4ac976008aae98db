//! cargo-fuzz target `record_decoder`: the body is `targets::record_decoder`, shared with `tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::record_decoder(data));
