#![no_main]
//! `cargo fuzz run -s none peer_messages`: see `rescind_fuzz::peer_messages`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rescind_fuzz::peer_messages(data));
