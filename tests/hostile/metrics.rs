//! Hostile input: metrics.
