#![no_main]
//! `cargo fuzz run -s none jwt`: see `rescind_fuzz::jwt`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rescind_fuzz::jwt(data));
