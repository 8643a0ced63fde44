//! `kubelet-keyring`: one kubelet image credential provider for every registry.
//!
//! The kubelet execs this binary with a `CredentialProviderRequest` on stdin and reads one
//! `CredentialProviderResponse` from stdout. Stdout carries that document and nothing else;
//! logs and errors go to stderr. Exit codes: 0 answered (possibly with no credentials),
//! 1 a backend or internal failure, 2 bad input or usage. A panic is a bug; its hook prints
//! where it happened but never its message, which could hold a credential. Every line on
//! stderr goes through [`logging::line()`] or the log formatter: one that cannot be written
//! (stderr closed early) is dropped, and the answer and the exit code stay what they are.
#![deny(clippy::print_stderr)]

use std::process::ExitCode;

use kubelet_keyring::{cli, logging};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        logging::line(&format!(
            "kubelet-keyring: internal error (a bug){at}; please report it"
        ));
    }));
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(failure) => {
            logging::line(&format!("kubelet-keyring: {}", failure.one_line()));
            return failure.exit_code();
        }
    };
    logging::init(cli.global.verbose);
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            logging::line(&format!("kubelet-keyring: {}", failure.one_line()));
            failure.exit_code()
        }
    }
}
