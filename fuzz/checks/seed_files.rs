//! The committed fuzz seeds, for the tests that replay them (`plugins/*/tests/fuzz_seeds.rs`,
//! which include this file by path; each sits two levels below the workspace root).

use std::path::PathBuf;

/// Every file of `fuzz/seeds/<target>`; fails if the directory is missing or empty.
pub fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
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
