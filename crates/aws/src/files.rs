//! The files the AWS SDK reads by itself, checked before it reads them: every backend that
//! runs the SDK's credentials chain calls [`check_files`] (or its parts) first.
//!
//! The SDK reads the profile files (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`, or
//! `~/.aws/config` and `~/.aws/credentials`), the web identity token (named by
//! `AWS_WEB_IDENTITY_TOKEN_FILE` or a profile's `web_identity_token_file`), EKS Pod
//! Identity's token (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), `AWS_CA_BUNDLE` and the SSO
//! token cache files whole, blocking, on the runtime's only thread, where the invocation's
//! deadline cannot interrupt it: a FIFO there hung the call until the watchdog, `/dev/zero`
//! took all memory. Each must be a regular file of at most [`MAX_FILE_BYTES`]; a file that
//! does not exist passes (a profile is optional, and the SDK says what is missing).
//!
//! Which profile a backend selects, and whether it asks the profiles at all, stays the
//! backend's: [`check_files`] takes the profile to select, [`check_environment_files`] and
//! [`check_profile_files`] are its two halves for a backend that loads the profiles itself.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

/// Largest AWS profile, web identity token, CA bundle or SSO token cache file the SDK is let
/// read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The files the SDK reads by itself, each `(variable, default under $HOME)`.
const FILES: [(&str, Option<&str>); 5] = [
    ("AWS_CONFIG_FILE", Some(".aws/config")),
    ("AWS_SHARED_CREDENTIALS_FILE", Some(".aws/credentials")),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
    // EKS Pod Identity's token, read by the container credentials provider.
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", None),
    ("AWS_CA_BUNDLE", None),
];

/// A file the SDK would read whole is a device, a FIFO, a directory or too large: the
/// node's configuration (a backend reports it as misconfiguration). Names the file and the
/// variable that named it, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{} {problem}; the AWS SDK would read it whole", from.map(|v| format!(" ({v})")).unwrap_or_default())]
pub struct FileError {
    /// The file, as the SDK would open it (a leading `~/` expanded).
    pub path: String,
    /// The variable that named it, when one did.
    pub from: Option<&'static str>,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Every file the SDK would read for the credentials chain with `profile` selected (`None`:
/// the SDK's own choice, `AWS_PROFILE` or `default`): [`check_environment_files`], then,
/// once those are known to be safe to read, the profiles loaded ([`load_profiles`]) and the
/// files they name ([`check_profile_files`]).
pub async fn check_files(profile: Option<&str>) -> Result<(), FileError> {
    check_environment_files()?;
    match load_profiles(profile).await {
        Some(set) => check_profile_files(&set),
        None => Ok(()),
    }
}

/// The files named by the environment (or their defaults under `$HOME`) that the SDK reads
/// whole: the profile and credentials files, the web identity and EKS Pod Identity tokens,
/// `AWS_CA_BUNDLE`.
pub fn check_environment_files() -> Result<(), FileError> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    for (var, default) in FILES {
        let path = match std::env::var_os(var).filter(|p| !p.is_empty()) {
            // The SDK expands a leading `~` as the shell would.
            Some(p) => match (p.to_str().and_then(|s| s.strip_prefix("~/")), &home) {
                (Some(rest), Some(h)) => Path::new(h).join(rest),
                _ => PathBuf::from(p),
            },
            None => match (default, &home) {
                (Some(d), Some(h)) => Path::new(h).join(d),
                _ => continue,
            },
        };
        check_file(&path, std::env::var_os(var).is_some().then_some(var))?;
    }
    Ok(())
}

/// The profiles, loaded as the SDK's profile link loads them (the same files, `profile`
/// selected, else `AWS_PROFILE` or `default`). Call it only after
/// [`check_environment_files`]: it reads the profile files. `None` when they cannot be
/// loaded: that is left to the SDK, which says why.
pub async fn load_profiles(profile: Option<&str>) -> Option<ProfileSet> {
    aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        profile.map(|p| Cow::Owned(p.to_string())),
    )
    .await
    .ok()
}

/// The files the profiles of `set` name, which the SDK reads whole, checked as
/// [`check_environment_files`] checks the profile files: a profile's
/// `web_identity_token_file`, and the SSO token cache files (`~/.aws/sso/cache/<SHA-1 of an
/// sso_session's name, or of a legacy sso_start_url>.json`). Every profile's, not only the
/// selected one's: a profile's chain may source another.
pub fn check_profile_files(set: &ProfileSet) -> Result<(), FileError> {
    use sha1::{Digest, Sha1};
    let profiles = || set.profiles().filter_map(|name| set.get_profile(name));
    for token in profiles().filter_map(|p| p.get("web_identity_token_file")) {
        check_file(Path::new(token), None)?;
    }
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    let cache = Path::new(&home).join(".aws/sso/cache");
    let sso = profiles().flat_map(|p| {
        [p.get("sso_session"), p.get("sso_start_url")]
            .into_iter()
            .flatten()
    });
    for id in sso.chain(set.sso_sessions()) {
        let hex: String = Sha1::digest(id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        check_file(&cache.join(format!("{hex}.json")), None)?;
    }
    Ok(())
}

/// The check of one file the SDK would read whole: `from`, the variable that named it, if
/// one did. A file that does not exist passes. `metadata` follows a link and opens nothing,
/// so neither a FIFO nor a device blocks it.
fn check_file(path: &Path, from: Option<&'static str>) -> Result<(), FileError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let problem = if !meta.is_file() {
        "is not a regular file"
    } else if meta.len() > MAX_FILE_BYTES {
        "is larger than 4 MiB"
    } else {
        return Ok(());
    };
    Err(FileError {
        path: path.display().to_string(),
        from,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_file_is_named_with_the_variable_that_named_it() {
        let dir = std::env::temp_dir();
        let err = check_file(&dir, Some("AWS_CONFIG_FILE")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} (AWS_CONFIG_FILE) is not a regular file; the AWS SDK would read it whole",
                dir.display()
            )
        );
        let err = check_file(Path::new("/dev/zero"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero is not a regular file; the AWS SDK would read it whole"
        );
        assert_eq!(
            check_file(Path::new("/nonexistent/aws/config"), None),
            Ok(())
        );
    }

    #[test]
    fn a_file_past_the_bound_is_refused_one_within_it_passes() {
        let path = std::env::temp_dir().join(format!("keyring-aws-files-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_FILE_BYTES).unwrap();
        let within = check_file(&path, None);
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let past = check_file(&path, Some("AWS_SHARED_CREDENTIALS_FILE"));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(within, Ok(()));
        assert_eq!(past.unwrap_err().problem, "is larger than 4 MiB");
    }
}
