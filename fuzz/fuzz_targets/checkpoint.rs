#![no_main]
//! `cargo fuzz run -s none checkpoint`: see `rescind_fuzz::checkpoint`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rescind_fuzz::checkpoint(data));
