#![no_main]
//! cargo-fuzz target `auth`: see `smtpkit_fuzz::auth` (fuzz/src/auth.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtpkit_fuzz::auth::run(data));
