//! `get-credentials`, the default action: one request on stdin, one response on stdout.

use std::io::{IsTerminal, Read, Write};

use keyring_api::provider::Query;
use keyring_api::wire::{decode_request, Response, MAX_REQUEST_BYTES};
use keyring_api::ImageName;

use crate::chain::Chain;
use crate::cli::GlobalArgs;
use crate::config::Config;
use crate::exit::Failure;

/// Reads the request, resolves it, writes the response.
pub fn run(args: &GlobalArgs) -> Result<(), Failure> {
    let input = read_stdin()?;
    let request =
        decode_request(&input).map_err(|e| Failure::BadInput(format!("invalid request: {e}")))?;
    let image = ImageName::parse(&request.image).map_err(|e| {
        let shown: String = request.image.chars().take(256).collect();
        Failure::BadInput(format!("invalid image reference {shown:?}: {e}"))
    })?;
    let mut query = Query::new(image);
    query.service_account_token = request.service_account_token.clone();
    query.service_account_annotations = request.service_account_annotations.clone();

    let config =
        Config::load(args.config.as_deref()).map_err(|e| Failure::BadInput(e.to_string()))?;
    let resolved = Chain::new(args, &config)?.resolve(&query)?;
    tracing::debug!(provider = resolved.provider.unwrap_or("none"), "resolved");
    let response = Response {
        api_version: request.api_version,
        cache_key_type: resolved.answer.cache_key_type,
        cache_duration: Some(resolved.answer.lifetime),
        auth: resolved.answer.auth,
    };
    write_stdout(&response.to_json())
}

/// Reads all of stdin, at most one byte more than a request may have.
fn read_stdin() -> Result<Vec<u8>, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "kubelet-keyring: reading a CredentialProviderRequest from stdin (end with Ctrl-D)"
        );
    }
    let mut buf = Vec::with_capacity(4096);
    stdin
        .lock()
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::BadInput(format!("cannot read request from stdin: {e}")))?;
    Ok(buf)
}

/// The one place that writes to stdout.
#[allow(clippy::print_stdout)]
fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Internal(format!("cannot write response to stdout: {e}")))
}
