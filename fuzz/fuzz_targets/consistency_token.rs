#![no_main]
//! `cargo fuzz run -s none consistency_token`: see `rescind_fuzz::consistency_token`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rescind_fuzz::consistency_token(data));
