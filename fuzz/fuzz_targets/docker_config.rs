//! Fuzz target `docker_config`: the checks in `checks/docker_config.rs`, which `plugins/*/tests/fuzz_seeds.rs`
//! also run over `seeds/docker_config/` in every `cargo test`.
#![no_main]

#[path = "../checks/docker_config.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
