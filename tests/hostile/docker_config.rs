//! Hostile input: docker_config.
