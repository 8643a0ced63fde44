//! Hostile input: ecr.
