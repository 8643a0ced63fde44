//! The black-box tests of the binary, as one test crate (one link instead of one per file).
//!
//! Each module is one area; `common` holds every shared helper (the sandbox, the runner, the
//! fake HTTP server, moto, TLS, the CONNECT proxies, the upstream configs). Tests that need a
//! real peer (moto, docker-registry, skopeo, the Go ECR helper, node_exporter, promtool, the
//! package tools) are `#[ignore = "needs <peer>"]`: plain `cargo test` lists them as ignored,
//! and `scripts/test.sh` runs them with `--include-ignored`, where a missing peer fails.
//!
//! Run one area alone with its module path: `cargo test --test tests hostile::`.

mod common;

mod acr;
mod cache;
mod cli;
mod config_examples;
mod cred_helpers;
mod ecr;
mod examples;
mod gcp;
mod hang;
mod hostile;
mod identity;
mod layout;
mod metrics;
mod mirrors;
mod packages;
mod registry_e2e;
mod reliability;
mod sa_tokens;
mod scenarios;
mod upstream;
mod upstream_acr;
mod validate_config;
