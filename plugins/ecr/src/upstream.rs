//! `ecr-credential-provider` (kubernetes/cloud-provider-aws `cmd/ecr-credential-provider`):
//! its command line and environment, and what this backend does with them.
//!
//! Upstream is a cobra command with no flags of its own besides `--help` and `--version`
//! (`-v`), that ignores positional arguments (kops and old EKS AL2 configs pass
//! `get-credentials`) and reads, besides the AWS SDK's environment, `AWS_ECR_ROLE_ARN`.
//! Under its name this backend answers with upstream's defaults where they decide
//! credentials:
//!
//! * a host that is neither ECR's nor a configured mirror (kops's ECR pull-through mirrors of
//!   `docker.io`, a cache's DNS name) gets a token of the SDK's default region, keyed by the
//!   image's registry (`ecr.otherHosts: defaultRegion`); upstream drops the port from the
//!   key, which the kubelet then never matches, so here the port stays;
//! * assumed-role sessions are named `ecr-credential-provider` (`ecr.sessionName`), so
//!   CloudTrail and IAM conditions on `sts:RoleSessionName` see what they saw.
//!
//! A plugin config file (`KUBELET_KEYRING_CONFIG`) that sets those fields wins.

use keyring_api::upstream::{EnvVar, Fate, Flag, Parsed, Plugin, Positionals, Takes};
use keyring_api::BackendError;

use crate::config::{Config, OtherHosts};

/// Upstream's `RoleSessionName`.
pub const UPSTREAM_SESSION_NAME: &str = "ecr-credential-provider";

const FLAGS: &[Flag] = &[
    Flag {
        long: "help",
        short: Some('h'),
        takes: Takes::Bool,
        fate: Fate::Honoured,
        note: "prints the usage and exits",
        source: "cmd/ecr-credential-provider/main.go",
    },
    Flag {
        long: "version",
        short: Some('v'),
        takes: Takes::Bool,
        fate: Fate::Honoured,
        note:
            "prints the version and exits (-v is --version here, as upstream; --v=N is verbosity)",
        source: "cmd/ecr-credential-provider/main.go",
    },
];

const SDK: &str = "read by the AWS SDK with the same meaning (credentials, profile, endpoints)";

const ENV: &[EnvVar] = &[
    EnvVar {
        name: "AWS_ECR_ROLE_ARN",
        fate: Fate::Honoured,
        note: "the role assumed with a pod's service-account token when its service account has no eks.amazonaws.com/ecr-role-arn annotation",
        source: "cmd/ecr-credential-provider/main.go",
    },
    EnvVar {
        name: "AWS_REGION",
        fate: Fate::Honoured,
        note: "the default region, for hosts that name none",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_DEFAULT_REGION",
        fate: Fate::Honoured,
        note: "the default region when AWS_REGION is not set",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_PROFILE",
        fate: Fate::Honoured,
        note: SDK,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_CONFIG_FILE",
        fate: Fate::Honoured,
        note: SDK,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_SHARED_CREDENTIALS_FILE",
        fate: Fate::Honoured,
        note: SDK,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_ACCESS_KEY_ID",
        fate: Fate::Honoured,
        note: "static credentials, with AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_WEB_IDENTITY_TOKEN_FILE",
        fate: Fate::Honoured,
        note: "web identity (IRSA) for the node's own credentials, with AWS_ROLE_ARN and AWS_ROLE_SESSION_NAME",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        fate: Fate::Honoured,
        note: "the container credentials endpoint (EKS Pod Identity, ECS); also _RELATIVE_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_EC2_METADATA_DISABLED",
        fate: Fate::Honoured,
        note: SDK,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        fate: Fate::Honoured,
        note: "the instance metadata endpoint (and _MODE)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_ENDPOINT_URL",
        fate: Fate::Honoured,
        note: "endpoint overrides, also per service: AWS_ENDPOINT_URL_ECR, _ECR_PUBLIC, _STS",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_USE_FIPS_ENDPOINT",
        fate: Fate::Honoured,
        note: SDK,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_USE_DUALSTACK_ENDPOINT",
        fate: Fate::Honoured,
        note: SDK,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_CA_BUNDLE",
        fate: Fate::Honoured,
        note: "the CA bundle trusted for AWS endpoints instead of the system's",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_MAX_ATTEMPTS",
        fate: Fate::Warned,
        note: "retries are bounded by this program's deadline inside the kubelet's 60 s instead",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_RETRY_MODE",
        fate: Fate::Warned,
        note: "retries are bounded by this program's deadline inside the kubelet's 60 s instead",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "HOME",
        fate: Fate::Honoured,
        note: "where ~/.aws/config and ~/.aws/credentials are",
        source: "github.com/aws/aws-sdk-go-v2/internal/shareddefaults/shared_config.go",
    },
    EnvVar {
        name: "HTTPS_PROXY",
        fate: Fate::Honoured,
        note: "proxy for AWS endpoints, with NO_PROXY (either case)",
        source: "github.com/aws/aws-sdk-go-v2/aws/transport/http/client.go (net/http ProxyFromEnvironment)",
    },
];

/// `ecr-credential-provider`.
pub static PLUGIN: Plugin = Plugin {
    backend: crate::NAME,
    names: &["ecr-credential-provider"],
    flags: FLAGS,
    klog: keyring_api::upstream::Klog::None,
    env: ENV,
    positionals: Positionals::Ignored,
    differences: &[
        "tokens are cached on disk and shared by every invocation on the node, so the kubelet's cache misses seldom reach ECR",
        "cacheDuration is the token's life less 5 minutes (about 11 h 55 min), where upstream sends half its life",
        "a matched host with a port keeps the port in the answer's key (upstream drops it and the kubelet never matches the answer)",
        "errors are one line on stderr naming the registry and a fix; exit 2 for local misconfiguration, 1 for AWS failures",
    ],
};

/// Applies an upstream command line to the `ecr:` section. Upstream has no flag that
/// changes credentials, so only the name matters: under it (`as_upstream`), hosts that
/// are not ECR's get a default-region token and sessions carry upstream's name, unless the
/// plugin config file set those fields.
pub fn configure(
    config: &mut Config,
    _parsed: &Parsed,
    as_upstream: bool,
    _env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), BackendError> {
    if as_upstream {
        config.other_hosts.get_or_insert(OtherHosts::DefaultRegion);
        config
            .session_name
            .get_or_insert_with(|| UPSTREAM_SESSION_NAME.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SESSION_NAME;
    use keyring_api::upstream::parse;

    fn run(args: &[&str], yaml: &str, as_upstream: bool) -> Config {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let parsed = parse(&PLUGIN, &args).unwrap();
        let mut config: Config = if yaml.is_empty() {
            Config::default()
        } else {
            serde_norway::from_str(yaml).unwrap()
        };
        configure(&mut config, &parsed, as_upstream, &|_| None).unwrap();
        config
    }

    #[test]
    fn upstreams_defaults_apply_under_its_name_only() {
        let c = run(&["get-credentials"], "", true);
        assert_eq!(c.other_hosts(), OtherHosts::DefaultRegion);
        assert_eq!(c.session_name(), "ecr-credential-provider");
        let c = run(&[], "", false);
        assert_eq!(c.other_hosts(), OtherHosts::NotMine);
        assert_eq!(c.session_name(), SESSION_NAME);
    }

    #[test]
    fn the_plugin_config_wins() {
        let c = run(
            &[],
            "otherHosts: notMine\nsessionName: kubelet-keyring\n",
            true,
        );
        assert_eq!(c.other_hosts(), OtherHosts::NotMine);
        assert_eq!(c.session_name(), SESSION_NAME);
    }

    #[test]
    fn every_public_args_line_parses() {
        // kops and EKS AL2 (2022) pass get-credentials; nodeadm, Bottlerocket and the rest
        // pass nothing. --v is not upstream's, but is never refused.
        for line in [&[][..], &["get-credentials"], &["get-credentials", "--v=3"]] {
            let args: Vec<String> = line.iter().map(|s| s.to_string()).collect();
            parse(&PLUGIN, &args).unwrap();
        }
        let p = parse(&PLUGIN, &["-v".to_string()]).unwrap();
        assert!(p.is_set("version"));
    }
}
