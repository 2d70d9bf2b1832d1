#![no_main]
//! cargo-fuzz target `dsn`: see `smtpkit_fuzz::dsn` (fuzz/src/dsn.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtpkit_fuzz::dsn::run(data));
