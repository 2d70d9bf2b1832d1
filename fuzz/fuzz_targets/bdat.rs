#![no_main]
//! cargo-fuzz target `bdat`: see `smtpkit_fuzz::bdat` (fuzz/src/bdat.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtpkit_fuzz::bdat::run(data));
