#![no_main]
//! `cargo fuzz run -s none snapshot_page`: see `rescind_fuzz::snapshot_page`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rescind_fuzz::snapshot_page(data));
