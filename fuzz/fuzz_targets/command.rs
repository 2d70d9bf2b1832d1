#![no_main]
//! cargo-fuzz target `command`: see `smtpkit_fuzz::command` (fuzz/src/command.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtpkit_fuzz::command::run(data));
