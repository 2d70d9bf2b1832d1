#![no_main]
//! cargo-fuzz target `proxy`: see `smtpkit_fuzz::proxy` (fuzz/src/proxy.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtpkit_fuzz::proxy::run(data));
