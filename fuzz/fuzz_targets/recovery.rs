//! cargo-fuzz target `recovery`: the body is `targets::recovery`, shared with `tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::recovery(data));
