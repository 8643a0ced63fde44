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

use keyring_api::upstream::{self, EnvVar, Fate, Flag, Parsed, Plugin, Positionals, Takes};
use keyring_api::BackendError;

use crate::config::{Config, OtherHosts};

/// Upstream's `RoleSessionName`.
pub const UPSTREAM_SESSION_NAME: &str = "ecr-credential-provider";

const FLAGS: &[Flag] = &[
    upstream::help("cmd/ecr-credential-provider/main.go"),
    Flag {
        long: "version",
        short: Some('v'),
        takes: Takes::Bool,
        fate: Fate::Honoured,
        note: "prints the version and exits (-v is --version, as upstream; --v=N is not a flag upstream, which exits 1 on it, and is taken here as verbosity)",
        source: "cmd/ecr-credential-provider/main.go",
    },
];

const SDK: &str = "read by the AWS SDK with the same meaning (credentials, profile, endpoints)";
const RETRIES: &str = "retries are the SDK's standard mode: 3 attempts of up to 30 s each, as upstream's default, all within the invocation's 50 s";
const NO_EFFECT: &str = "read by the AWS SDK; no effect on the ECR and STS calls";

const ENV: &[EnvVar] = &[
    EnvVar {
        name: "AWS_ECR_ROLE_ARN",
        fate: Fate::Honoured,
        note: "the role assumed with a pod's service-account token when its service account has no eks.amazonaws.com/ecr-role-arn annotation; with the annotation present but empty, the node's credentials, as upstream",
        source: "cmd/ecr-credential-provider/main.go",
    },
    EnvVar {
        name: "AWS_REGION",
        fate: Fate::Honoured,
        note: "the default region: for hosts that name none, and STS's for a pod's role with ECR Public; after it AWS_DEFAULT_REGION, the profile, then the instance metadata service (which upstream's SDK never asks)",
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
        note: "static credentials, with AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (or the Go SDK's other names AWS_ACCESS_KEY, AWS_SECRET_KEY)",
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
        note: "the container credentials endpoint (EKS Pod Identity, ECS)",
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
        note: "the instance metadata endpoint",
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
        note: "the FIPS API endpoints; as upstream, under this name the only way to them besides the profile's use_fips_endpoint (a FIPS registry host does not choose the API endpoint)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_USE_DUALSTACK_ENDPOINT",
        fate: Fate::Honoured,
        note: "the dual-stack API endpoints; as upstream, under this name the only way to them besides the profile's use_dualstack_endpoint (a dual-stack registry host does not choose the API endpoint)",
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
        note: RETRIES,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_RETRY_MODE",
        fate: Fate::Warned,
        note: RETRIES,
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
    // The rest of what the AWS SDK for Rust reads on this backend's path, and what the Go
    // SDK reads that it does not. Upstream sources: aws-sdk-go-v2 config/env_config.go for
    // the AWS_* rows unless noted; Go net/http (ProxyFromEnvironment) for the proxy rows,
    // crypto/x509 for SSL_CERT_*; AWS_EXECUTION_ENV, AWS_LAMBDA_FUNCTION_NAME,
    // _X_AMZN_TRACE_ID: aws-sdk-go-v2 aws/middleware; AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE:
    // config/resolve_credentials.go; AWS_DISABLE_CLOCK_SKEW_CORRECTION,
    // AWS_AUTH_SCHEME_PREFERENCE, AWS_SIGV4A_SIGNING_REGION_SET: not read upstream (extras
    // of the Rust SDK).
    EnvVar {
        name: "AWS_SECRET_ACCESS_KEY",
        fate: Fate::Honoured,
        note: "static credentials, with AWS_ACCESS_KEY_ID",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_SESSION_TOKEN",
        fate: Fate::Honoured,
        note: "the session token of static credentials",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_ACCESS_KEY",
        fate: Fate::Honoured,
        note: "the Go SDK's other name for AWS_ACCESS_KEY_ID, read when that is not set (the Rust SDK does not read it; this program does)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_SECRET_KEY",
        fate: Fate::Honoured,
        note: "the Go SDK's other name for AWS_SECRET_ACCESS_KEY, read when that is not set (the Rust SDK does not read it; this program does)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_ACCOUNT_ID",
        fate: Fate::Honoured,
        note: NO_EFFECT,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_DEFAULT_PROFILE",
        fate: Fate::Honoured,
        note: "the profile when AWS_PROFILE is not set, as the Go SDK reads it (the Rust SDK does not; this program does)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_ROLE_ARN",
        fate: Fate::Honoured,
        note: "the role of web identity (IRSA) for the node's own credentials, with AWS_WEB_IDENTITY_TOKEN_FILE; not a pod's role (AWS_ECR_ROLE_ARN)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_ROLE_SESSION_NAME",
        fate: Fate::Honoured,
        note: "the session name of web identity for the node's own credentials",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        fate: Fate::Honoured,
        note: "the ECS container credentials endpoint, relative to 169.254.170.2",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        fate: Fate::Honoured,
        note: "the container credentials endpoint's authorization token",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        fate: Fate::Honoured,
        note: "the file of the container credentials endpoint's authorization token (EKS Pod Identity); a regular file of at most 4 MiB",
        source: "github.com/aws/aws-sdk-go-v2/config/resolve_credentials.go",
    },
    EnvVar {
        name: "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        fate: Fate::Honoured,
        note: "IPv4 or IPv6 instance metadata endpoint",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_EC2_METADATA_V1_DISABLED",
        fate: Fate::Warned,
        note: "IMDSv1 is never used here: the instance metadata client speaks IMDSv2 only, as if this were true (upstream falls back to IMDSv1 unless it is)",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        fate: Fate::Honoured,
        note: "ignores AWS_ENDPOINT_URL* and the profile's endpoint_url",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_DEFAULTS_MODE",
        fate: Fate::Warned,
        note: "the Go SDK's defaults modes (timeouts) do not exist in the Rust SDK; this program's bounds apply",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_SDK_UA_APP_ID",
        fate: Fate::Honoured,
        note: "an application ID in the User-Agent",
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_DISABLE_REQUEST_COMPRESSION",
        fate: Fate::Honoured,
        note: NO_EFFECT,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES",
        fate: Fate::Honoured,
        note: NO_EFFECT,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_REQUEST_CHECKSUM_CALCULATION",
        fate: Fate::Honoured,
        note: NO_EFFECT,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_RESPONSE_CHECKSUM_VALIDATION",
        fate: Fate::Honoured,
        note: NO_EFFECT,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_ACCOUNT_ID_ENDPOINT_MODE",
        fate: Fate::Honoured,
        note: NO_EFFECT,
        source: "github.com/aws/aws-sdk-go-v2/config/env_config.go",
    },
    EnvVar {
        name: "AWS_AUTH_SCHEME_PREFERENCE",
        fate: Fate::Honoured,
        note: "read by the Rust SDK only (not upstream); no effect on the ECR and STS calls",
        source: "",
    },
    EnvVar {
        name: "AWS_SIGV4A_SIGNING_REGION_SET",
        fate: Fate::Honoured,
        note: "read by the Rust SDK only (not upstream); no effect on the ECR and STS calls",
        source: "",
    },
    EnvVar {
        name: "AWS_DISABLE_CLOCK_SKEW_CORRECTION",
        fate: Fate::Honoured,
        note: "read by the Rust SDK only (not upstream): true turns off its correction of the request time by AWS's clock",
        source: "",
    },
    EnvVar {
        name: "AWS_EXECUTION_ENV",
        fate: Fate::Honoured,
        note: "named in the User-Agent",
        source: "github.com/aws/aws-sdk-go-v2/aws/middleware",
    },
    EnvVar {
        name: "AWS_LAMBDA_FUNCTION_NAME",
        fate: Fate::Honoured,
        note: "with _X_AMZN_TRACE_ID, a trace header inside AWS Lambda only",
        source: "github.com/aws/aws-sdk-go-v2/aws/middleware",
    },
    EnvVar {
        name: "_X_AMZN_TRACE_ID",
        fate: Fate::Honoured,
        note: "the trace header inside AWS Lambda only",
        source: "github.com/aws/aws-sdk-go-v2/aws/middleware",
    },
    EnvVar {
        name: "HTTP_PROXY",
        fate: Fate::Honoured,
        note: "proxy for http:// endpoints (the instance metadata and container endpoints, http:// overrides), with NO_PROXY (either case)",
        source: "github.com/aws/aws-sdk-go-v2/aws/transport/http/client.go (net/http ProxyFromEnvironment)",
    },
    EnvVar {
        name: "NO_PROXY",
        fate: Fate::Honoured,
        note: "hosts reached without the proxy (either case)",
        source: "github.com/aws/aws-sdk-go-v2/aws/transport/http/client.go (net/http ProxyFromEnvironment)",
    },
    EnvVar {
        name: "ALL_PROXY",
        fate: Fate::Warned,
        note: "upstream's Go HTTP client does not read it, so under this name it is no proxy either (set HTTPS_PROXY); under kubelet-keyring it is the proxy for what HTTPS_PROXY and HTTP_PROXY leave",
        source: "github.com/aws/aws-sdk-go-v2/aws/transport/http/client.go (net/http ProxyFromEnvironment)",
    },
    EnvVar {
        name: "REQUEST_METHOD",
        fate: Fate::Honoured,
        note: "a CGI guard, as in Go: when set, HTTP_PROXY is not used",
        source: "github.com/aws/aws-sdk-go-v2/aws/transport/http/client.go (net/http ProxyFromEnvironment)",
    },
    EnvVar {
        name: "SSL_CERT_FILE",
        fate: Fate::Honoured,
        note: "the system's trusted certificates, from this file (not with AWS_CA_BUNDLE, which replaces them)",
        source: "crypto/x509 (root_unix.go)",
    },
    EnvVar {
        name: "SSL_CERT_DIR",
        fate: Fate::Honoured,
        note: "the system's trusted certificates, from this directory (not with AWS_CA_BUNDLE, which replaces them)",
        source: "crypto/x509 (root_unix.go)",
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
        "a token already expired by this node's clock is answered for that pull only (cacheDuration 0s) with a warning naming the skew; upstream omits cacheDuration, so the kubelet would keep a token this node thinks expired for its defaultCacheDuration (12 h on EKS)",
        "the whole call has the invocation's 50 s: credentials (credential_process, SSO, STS) may take up to 40 s of it and each HTTP attempt 30 s as upstream; upstream has no bound but the kubelet's 60 s kill, so a call needing more fails here in one line where upstream is killed",
        "a profile's credential_process has the credentials' share of the 50 s (upstream's Go SDK gives it a minute) and is then killed with its whole process group, its children too (upstream kills the process alone, and waits for any child still holding its output); its stderr is not passed on (upstream copies it to its own stderr, which the kubelet logs): a failure says how many bytes it wrote, since it may hold a secret; a reply that does not parse is never quoted (upstream quotes it, keys and all); its stdout may hold 64 KiB",
        "the instance metadata service speaks IMDSv2 only (IMDSv1 is what SSRF attacks reach; AWS recommends requiring v2): a node offering only IMDSv1, or a containerised kubelet behind a hop limit of 1, gets no node credentials, where upstream falls back to IMDSv1",
        "the default region (hosts naming none; STS for a pod's role with ECR Public) is also asked of the instance metadata service, and STS falls back to us-east-1, where upstream fails without AWS_REGION or a profile region",
        "a blank eks.amazonaws.com/ecr-role-arn annotation is empty (the node's credentials), where upstream sends it to STS, which refuses it",
        "a matched host with a port keeps the port in the answer's key (upstream drops it and the kubelet never matches the answer)",
        "errors are one line on stderr naming the registry and a fix; exit 2 for local misconfiguration, 1 for AWS failures",
    ],
};

/// Applies an upstream command line to the `ecr:` section. Upstream has no flag that
/// changes credentials, so only the name matters: under it (`as_upstream`), hosts that
/// are not ECR's get a default-region token, sessions carry upstream's name and a FIPS or
/// dual-stack registry host does not choose the API endpoint, unless the plugin config file
/// set those fields; and the proxy variables are read as upstream's Go client reads them
/// (`ALL_PROXY` is none).
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
        config.endpoint_variants_from_host.get_or_insert(false);
        config.go_proxy_variables = true;
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
        assert!(!c.endpoint_variants_from_host() && c.go_proxy_variables);
        let c = run(&[], "", false);
        assert_eq!(c.other_hosts(), OtherHosts::NotMine);
        assert_eq!(c.session_name(), SESSION_NAME);
        assert!(c.endpoint_variants_from_host() && !c.go_proxy_variables);
    }

    #[test]
    fn the_plugin_config_wins() {
        let c = run(
            &[],
            "otherHosts: notMine\nsessionName: kubelet-keyring\nendpointVariantsFromHost: true\n",
            true,
        );
        assert_eq!(c.other_hosts(), OtherHosts::NotMine);
        assert_eq!(c.session_name(), SESSION_NAME);
        assert!(c.endpoint_variants_from_host());
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
