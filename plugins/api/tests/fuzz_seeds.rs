//! Replays the committed fuzz seeds (`fuzz/seeds/request`, `fuzz/seeds/matching`) through the
//! same checks the cargo-fuzz targets run (`fuzz/checks/*.rs`), so every crash or regression
//! input found by fuzzing stays fixed without cargo-fuzz or a nightly toolchain.

#[path = "../../../fuzz/checks/matching.rs"]
mod matching;
#[path = "../../../fuzz/checks/request.rs"]
mod request;

use std::path::PathBuf;

/// Every file of `fuzz/seeds/<target>`; fails if the directory is missing or empty.
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let listing = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed directory {} unreadable: {e}", dir.display()));
    let mut files: Vec<(PathBuf, Vec<u8>)> = listing
        .map(|entry| {
            let path = entry.expect("seed directory entry").path();
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("seed {} unreadable: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.sort();
    files
}

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
