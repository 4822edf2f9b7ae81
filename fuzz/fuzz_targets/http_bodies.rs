#![no_main]
//! `cargo fuzz run -s none http_bodies`: see `rescind_fuzz::http_bodies`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rescind_fuzz::http_bodies(data));
