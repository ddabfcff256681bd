//! Fuzz target: the checks of `dockerutils::fuzz_entry::registry` (src/fuzz_entry.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dockerutils::fuzz_entry::registry(data));
