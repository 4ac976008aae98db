//! cargo-fuzz target `parity_decoder`: the body is `targets::parity_decoder`, shared with `tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::parity_decoder(data));
