//! Replays the committed fuzz seeds (`fuzz/seeds/docker_config`) through the same checks the
//! cargo-fuzz target runs (`fuzz/checks/docker_config.rs`), so every crash or regression input
//! found by fuzzing stays fixed without cargo-fuzz or a nightly toolchain.

#[path = "../../../fuzz/checks/docker_config.rs"]
mod docker_config;

#[path = "../../../fuzz/checks/seed_files.rs"]
mod seed_files;
use seed_files::seeds;

#[test]
fn docker_config_seeds_pass_the_fuzz_checks() {
    for (path, bytes) in seeds("docker_config") {
        let outcome = std::panic::catch_unwind(|| docker_config::check(&bytes));
        assert!(outcome.is_ok(), "seed {} fails its checks", path.display());
    }
}
