//! Hostile input: gcp.
