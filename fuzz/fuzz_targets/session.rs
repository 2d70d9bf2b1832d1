#![no_main]
//! cargo-fuzz target `session`: see `smtpkit_fuzz::session` (fuzz/src/session.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtpkit_fuzz::session::run(data));
