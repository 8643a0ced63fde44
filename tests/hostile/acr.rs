//! Hostile input: acr.
