//! Fuzz target `request`: the checks in `checks/request.rs`, which `plugins/*/tests/fuzz_seeds.rs`
//! also run over `seeds/request/` in every `cargo test`.
#![no_main]

#[path = "../checks/request.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
