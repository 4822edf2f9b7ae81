#![no_main]
//! `cargo fuzz run -s none scenario`: see `rescind_fuzz::scenario`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rescind_fuzz::scenario(data));
