//! Replays the committed fuzz seeds (`fuzz/seeds/request`, `fuzz/seeds/matching`) through the
//! same checks the cargo-fuzz targets run (`fuzz/checks/*.rs`), so every crash or regression
//! input found by fuzzing stays fixed without cargo-fuzz or a nightly toolchain.

#[path = "../../../fuzz/checks/matching.rs"]
mod matching;
#[path = "../../../fuzz/checks/request.rs"]
mod request;

#[path = "../../../fuzz/checks/seed_files.rs"]
mod seed_files;
use seed_files::seeds;

fn replay(target: &str, check: fn(&[u8])) {
    for (path, bytes) in seeds(target) {
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "seed {} fails its checks", path.display());
    }
}

#[test]
fn request_seeds_pass_the_fuzz_checks() {
    replay("request", request::check);
}

#[test]
fn matching_seeds_pass_the_fuzz_checks() {
    replay("matching", matching::check);
}
