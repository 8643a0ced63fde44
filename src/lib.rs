//! The `kubelet-keyring` program as a library: the binary (`src/main.rs`) is a thin shell
//! around [`cli::run`]. Exposed so integration tests, benchmarks and examples reach the same
//! code the binary runs; it is not a stable API.
//!
//! Nothing here prints with `eprintln!` (denied below): a line on stderr goes through
//! [`logging::line()`], which cannot fail the answer.
#![deny(clippy::print_stderr)]

pub mod args;
pub mod backends;
pub mod cache;
pub mod chain;
pub mod cli;
pub mod config;
pub mod core;
pub mod exit;
pub mod explain;
pub mod get;
pub mod io;
pub mod logging;
pub mod metrics;
pub mod mirrors;
pub mod upstream;
pub mod validate;
