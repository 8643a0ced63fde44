//! Hostile input, one module per area: what a hostile user or a careless operator can put in
//! front of the binary (stdin, files others name or can write, the cache and metrics
//! directories, credential helpers, every backend's peers, the command line), and what must
//! still hold: one line on stderr and a clear exit code, never a panic, a hang past the
//! deadline, a secret on stderr, an unbounded read, or an answer cached wider than it holds.
//!
//! Run the group alone: `cargo test --test tests hostile::`. Each test names the promise it
//! holds; README.md's "Guarantees" section links here.

mod acr;
mod cache;
mod cli;
mod docker_config;
mod ecr;
mod files;
mod gcp;
mod identity;
mod logging;
mod metrics;
mod mirrors;
mod stdin;
