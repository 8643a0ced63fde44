//! Fuzz target `matching`: the checks in `checks/matching.rs`, which `plugins/*/tests/fuzz_seeds.rs`
//! also run over `seeds/matching/` in every `cargo test`.
#![no_main]

#[path = "../checks/matching.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
