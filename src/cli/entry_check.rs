//! What `validate-config` says of a `CredentialProviderConfig` entry that runs this program:
//! the swap report under an upstream plugin's name, whether this CLI takes the `args` under
//! its own.

use clap::error::ErrorKind;
use clap::CommandFactory;

use super::{usage_error, Cli};

/// What this program does with a `CredentialProviderConfig` entry that runs it: the check
/// `validate-config` hands to the config checker (`keyring_kubelet_config::traps::EntryCheck`),
/// which cannot know this CLI or the upstream plugins' tables itself. Under an upstream
/// plugin's name: that plugin's swap report; under its own: whether the CLI takes the `args`.
pub fn entry_check(
    entry: &keyring_kubelet_config::traps::Entry<'_>,
) -> Vec<keyring_kubelet_config::traps::Warning> {
    if let Some(plugin) = crate::upstream::persona(std::ffi::OsStr::new(entry.name)) {
        return crate::upstream::swap_report(plugin, entry);
    }
    if !entry.runs_self {
        return Vec::new();
    }
    args_trap(entry.args)
        .map(|message| keyring_kubelet_config::traps::Warning {
            severity: keyring_kubelet_config::Severity::Warning,
            provider: None,
            field: Some("args".into()),
            message,
        })
        .into_iter()
        .collect()
}

/// What is wrong with `args` for this program, if anything. Parses them as `parse` does:
/// upstream flags split off and read against the upstream tables, the rest with the real CLI.
fn args_trap(args: &[String]) -> Option<String> {
    let own = match crate::upstream::split(args, crate::args::takes_value) {
        Some((own, theirs)) => match crate::upstream::parse_own_name(&theirs) {
            Ok(_) => own,
            Err(e) => {
                return Some(format!(
                    "kubelet-keyring refuses these args ({}): it exits 2 on every pull",
                    e.message
                ))
            }
        },
        None => args.to_vec(),
    };
    let argv = std::iter::once(keyring_kubelet_config::traps::SELF_NAME.to_string()).chain(own);
    let fix = "use args: [get-credentials]";
    match Cli::command().try_get_matches_from(argv) {
        Ok(m) => match m.subcommand_name() {
            None | Some("get-credentials") => None,
            Some(other) => Some(format!(
                "args run \"kubelet-keyring {other}\", which does not answer the kubelet's \
                 request; {fix}"
            )),
        },
        Err(e) => Some(match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => format!(
                "args make kubelet-keyring print help or its version instead of answering; {fix}"
            ),
            ErrorKind::InvalidSubcommand => format!(
                "args name an {}: kubelet-keyring exits 2 on every pull; {fix}",
                usage_error(&e)
            ),
            ErrorKind::UnknownArgument => format!(
                "args hold an {}: kubelet-keyring exits 2 on every pull; {fix}",
                usage_error(&e)
            ),
            _ => format!(
                "kubelet-keyring refuses these args ({}): it exits 2 on every pull; {fix}",
                usage_error(&e)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(p: &keyring_kubelet_config::decode::Provider) -> Vec<(Option<String>, String)> {
        let options = keyring_kubelet_config::traps::Options {
            bin_dir: None,
            entry_check: Some(&entry_check),
        };
        keyring_kubelet_config::traps::check(&[p], &options)
            .into_iter()
            .filter(|w| w.severity == keyring_kubelet_config::Severity::Warning)
            .map(|w| (w.field, w.message))
            .collect()
    }

    fn entry(name: &str, images: &[&str]) -> keyring_kubelet_config::decode::Provider {
        keyring_kubelet_config::decode::Provider {
            name: name.into(),
            match_images: images.iter().map(|s| s.to_string()).collect(),
            default_cache_duration: Some(300_000_000_000),
            api_version: "credentialprovider.kubelet.k8s.io/v1".into(),
            args: vec!["get-credentials".into()],
            ..Default::default()
        }
    }

    #[test]
    fn args_are_parsed_with_this_programs_cli() {
        let args = |a: &[&str]| {
            let mut p = entry("kubelet-keyring", &["a.io"]);
            p.args = a.iter().map(|s| s.to_string()).collect();
            warnings(&p)
        };
        for ok in [
            &[][..],
            &["get-credentials"],
            &["get-credentials", "-v"],
            &["--config=/etc/k.yaml", "get-credentials"],
            &["get-credentials", "--no-cache"],
            // Upstream flags are taken under the own name too.
            &["get-credentials", "--v=3", "--logtostderr"],
        ] {
            assert!(args(ok).is_empty(), "{ok:?}: {:?}", args(ok));
        }
        let w = args(&["get-credential"]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0.as_deref(), Some("args"));
        assert_eq!(
            w[0].1,
            "args name an unknown subcommand \"get-credential\" (did you mean \"get-credentials\"?): kubelet-keyring exits 2 on every pull; use args: [get-credentials]"
        );
        let w = args(&["get-credentials", "--token=hunter2"]);
        assert!(
            w[0].1.starts_with("args hold an unknown flag \"--token\""),
            "{}",
            w[0].1
        );
        assert!(!w[0].1.contains("hunter2"));
        assert!(args(&["cache", "list"])[0]
            .1
            .starts_with("args run \"kubelet-keyring cache\""));
        assert!(args(&["--help"])[0].1.contains("print help"));
        // An upstream name of a backend this build has: that plugin's command line (upstream
        // ignores positionals).
        #[cfg(feature = "ecr")]
        {
            let mut p = entry("ecr-credential-provider", &["a.io"]);
            p.args = vec!["whatever".into()];
            assert!(warnings(&p).is_empty());
            p.args = vec!["--bogus".into()];
            assert!(
                warnings(&p)[0].1.contains("unknown flag --bogus"),
                "{:?}",
                warnings(&p)
            );
        }
        // Another plugin's args are its own business.
        let mut p = entry("harbor-credential-provider", &["a.io"]);
        p.args = vec!["--username=jwt".into()];
        assert!(warnings(&p).is_empty());
    }
}
