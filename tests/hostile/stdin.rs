//! Hostile input: stdin.
