//! Hostile input: logging.
