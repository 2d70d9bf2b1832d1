#![no_main]
//! cargo-fuzz target `data`: see `smtpkit_fuzz::data` (fuzz/src/data.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtpkit_fuzz::data::run(data));
