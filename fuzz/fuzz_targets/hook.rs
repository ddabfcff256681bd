//! Fuzz target: the checks of `dockerutils::fuzz_entry::hook` (src/fuzz_entry.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dockerutils::fuzz_entry::hook(data));
