//! The `ecr:` section of the plugin config file.
//!
//! ```yaml
//! ecr:
//!   mirrors:
//!     # Images on this host get an ECR token for us-west-2. Quote the registry ID: YAML
//!     # would read 012345678901 as a number and lose the leading zero.
//!     - host: mirror.example.com:5000
//!       region: us-west-2
//!       registryId: "123456789012"
//!     - host: "*.cache.example.com"     # one label per '*', as in matchImages
//!       region: eu-central-1
//!       fips: false                     # use the FIPS API endpoint
//!       dualStack: false                # use the dual-stack (IPv6) API endpoint
//!   # KEP-4412 service-account tokens (see the crate docs): the role assumed for a pod whose
//!   # service account has no eks.amazonaws.com/ecr-role-arn annotation.
//!   serviceAccountRoleArn: arn:aws:iam::123456789012:role/ecr-pull
//!   # With a token but no role anywhere: the node's credentials (true, the default) or fail.
//!   nodeIdentityFallback: true
//!   # Also take the role from the service account's eks.amazonaws.com/role-arn annotation
//!   # (IRSA's), after every other source (default false; the kubelet must be told to send
//!   # that annotation, in tokenAttributes.optionalServiceAccountAnnotationKeys).
//!   irsaRoleAnnotation: false
//!   # RoleSessionName of those sessions, as CloudTrail shows it (default kubelet-keyring;
//!   # ecr-credential-provider when run under that name).
//!   sessionName: kubelet-keyring
//!   # Hosts that are neither ECR nor a mirror above: notMine (the default: the next backend
//!   # is asked) or defaultRegion (an ECR token of the SDK's default region, as upstream's
//!   # ecr-credential-provider gives every image the kubelet sends it, for pull-through
//!   # caches; the default when run under that name).
//!   otherHosts: notMine
//!   # A FIPS or dual-stack registry host (123456789012.dkr.ecr-fips.us-east-1.amazonaws.com,
//!   # ....dkr-ecr.us-east-1.on.aws, ecr-public.aws.com) asks the FIPS or dual-stack ECR API
//!   # endpoint (true, the default), or the region's standard one, as upstream's
//!   # ecr-credential-provider does (false, the default when run under that name: a VPC
//!   # endpoint whose private DNS covers only the standard name keeps working).
//!   # AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT and the profile's settings apply
//!   # either way; a mirror's fips / dualStack above are its own.
//!   endpointVariantsFromHost: true
//! ```
//!
//! A mirror (a pull-through cache, a reverse proxy, a vanity name in front of an ECR registry)
//! is a host the ECR host parser does not recognise but whose images should get an ECR
//! token. Its `host` is matched against the image with the kubelet's own rules
//! ([`keyring_api::pattern`]): the same number of DNS labels, each label a glob, and equal
//! ports, where no port only matches no port. So `mirror.example.com` matches neither
//! `evil-mirror.example.com`, `mirror.example.com.evil.io` nor `mirror.example.com:5000`.
//! The first entry that matches wins; entries are consulted before the ECR host parser, so
//! an entry may also pin the region of a real ECR host.
//!
//! `region` picks the ECR API endpoint (the token is regional). `registryId` is optional
//! and informational: it names the account in logs, errors and the answer's source, but is
//! not sent, since AWS deprecated `registryIds` (a token is good for every registry the
//! identity may read in that region). `fips` and `dualStack` choose the API endpoint variant
//! that the host name would have told for a real ECR host.
//!
//! Validation happens while deserializing, so a loaded [`Config`] is always valid and the
//! error names the entry: `ecr.mirrors[1] (host "a.example.com"): region "US_WEST" is not ...`.

use keyring_api::pattern::{parse_schemeless, Target};
use keyring_api::InvalidSetting;
use serde::{Deserialize, Deserializer};

/// The validated `ecr:` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct Config {
    /// Mirror hosts, in file order.
    pub mirrors: Vec<Mirror>,
    /// KEP-4412: the role assumed with a pod's service-account token when the service account
    /// has no `eks.amazonaws.com/ecr-role-arn` annotation (before `AWS_ECR_ROLE_ARN`).
    pub service_account_role_arn: Option<String>,
    /// KEP-4412: with a token but no role anywhere, use the node's credentials (`true`, the
    /// default, as upstream since PR #1281) or fail the request (`false`).
    pub node_identity_fallback: bool,
    /// KEP-4412: the IRSA annotation `eks.amazonaws.com/role-arn` names the role when
    /// nothing else does (opt-in).
    pub irsa_role_annotation: bool,
    /// `RoleSessionName` of assumed-role sessions, if set ([`Config::session_name`]).
    pub session_name: Option<String>,
    /// What hosts that are neither ECR nor a mirror get, if set ([`Config::other_hosts`]).
    pub other_hosts: Option<OtherHosts>,
    /// Whether a FIPS or dual-stack registry host asks the matching API endpoint, if set
    /// ([`Config::endpoint_variants_from_host`]).
    pub endpoint_variants_from_host: Option<bool>,
    /// The proxy variables as upstream's Go HTTP client reads them: `ALL_PROXY` ignored. Not
    /// a setting of the file: set when answering as `ecr-credential-provider`
    /// (`upstream::configure`).
    pub go_proxy_variables: bool,
}

/// What an image on a host that is neither ECR's nor a configured mirror gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OtherHosts {
    /// Nothing: the next backend is asked.
    #[default]
    NotMine,
    /// An ECR token of the SDK's default region (`AWS_REGION`, `AWS_DEFAULT_REGION`, the
    /// profile, the instance metadata), keyed by the image's registry: upstream's behaviour
    /// since its PR 673, for pull-through caches and mirrors the kubelet's `matchImages`
    /// send here.
    DefaultRegion,
}

/// The default [`Config::session_name`].
pub const SESSION_NAME: &str = "kubelet-keyring";

impl Default for Config {
    fn default() -> Self {
        Config {
            mirrors: Vec::new(),
            service_account_role_arn: None,
            node_identity_fallback: true,
            irsa_role_annotation: false,
            session_name: None,
            other_hosts: None,
            endpoint_variants_from_host: None,
            go_proxy_variables: false,
        }
    }
}

/// One mirror entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port]`, labels may be globs (`*`).
    pub host: String,
    /// The AWS region of the ECR registry behind the mirror.
    pub region: String,
    /// The registry's account, if given (informational).
    pub registry_id: Option<String>,
    /// Use the FIPS API endpoint.
    pub fips: bool,
    /// Use the dual-stack API endpoint.
    pub dual_stack: bool,
}

impl Config {
    /// `RoleSessionName` of assumed-role sessions ([`SESSION_NAME`] unless set).
    pub fn session_name(&self) -> &str {
        self.session_name.as_deref().unwrap_or(SESSION_NAME)
    }

    /// What other hosts get ([`OtherHosts::NotMine`] unless set).
    pub fn other_hosts(&self) -> OtherHosts {
        self.other_hosts.unwrap_or_default()
    }

    /// Whether a FIPS or dual-stack registry host asks the FIPS or dual-stack API endpoint
    /// (`true` unless set).
    pub fn endpoint_variants_from_host(&self) -> bool {
        self.endpoint_variants_from_host.unwrap_or(true)
    }

    /// The first mirror whose host matches the image.
    pub fn mirror_for(&self, image: &Target) -> Option<&Mirror> {
        self.mirrors.iter().find(|m| image.matched_by(&m.host))
    }
}

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    mirrors: Vec<RawMirror>,
    service_account_role_arn: Option<String>,
    node_identity_fallback: Option<bool>,
    irsa_role_annotation: Option<bool>,
    session_name: Option<String>,
    other_hosts: Option<OtherHosts>,
    endpoint_variants_from_host: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMirror {
    host: String,
    region: String,
    #[serde(default, deserialize_with = "quoted_registry_id")]
    registry_id: Option<String>,
    #[serde(default)]
    fips: bool,
    #[serde(default)]
    dual_stack: bool,
}

impl TryFrom<RawConfig> for Config {
    type Error = InvalidSetting;

    fn try_from(raw: RawConfig) -> Result<Self, InvalidSetting> {
        let mut mirrors: Vec<Mirror> = Vec::with_capacity(raw.mirrors.len());
        for (i, m) in raw.mirrors.into_iter().enumerate() {
            // The entry, named by index and host: a problem may concern any of its fields.
            let at = format!("ecr.mirrors[{i}] (host {:?})", m.host);
            check_host(&at, &m.host)?;
            check_region(&at, &m.region)?;
            if let Some(id) = &m.registry_id {
                if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InvalidSetting::new(
                        at,
                        format!("registryId {id:?} is not a 12-digit AWS account ID"),
                    ));
                }
            }
            if let Some(j) = mirrors.iter().position(|o| o.host == m.host) {
                return Err(InvalidSetting::new(
                    at,
                    format!("the same host as ecr.mirrors[{j}]"),
                ));
            }
            mirrors.push(Mirror {
                host: m.host,
                region: m.region,
                registry_id: m.registry_id,
                fips: m.fips,
                dual_stack: m.dual_stack,
            });
        }
        if let Some(arn) = &raw.service_account_role_arn {
            check_role_arn("ecr.serviceAccountRoleArn", arn)?;
        }
        if let Some(name) = &raw.session_name {
            check_session_name("ecr.sessionName", name)?;
        }
        Ok(Config {
            mirrors,
            service_account_role_arn: raw.service_account_role_arn,
            node_identity_fallback: raw.node_identity_fallback.unwrap_or(true),
            irsa_role_annotation: raw.irsa_role_annotation.unwrap_or(false),
            session_name: raw.session_name,
            other_hosts: raw.other_hosts,
            endpoint_variants_from_host: raw.endpoint_variants_from_host,
            go_proxy_variables: false,
        })
    }
}

/// STS's rule for `RoleSessionName`: 2 to 64 of `[\w+=,.@-]`. `setting` names where the
/// value came from, for the error.
pub fn check_session_name(setting: &str, name: &str) -> Result<(), InvalidSetting> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(80).collect();
        Err(InvalidSetting::new(
            setting.to_string(),
            format!("{shown:?} is not a session name: 2 to 64 letters, digits or _+=,.@-"),
        ))
    }
}

/// An IAM role ARN, `arn:<partition>:iam::<12-digit account>:role/[<path>/]<name>`, as
/// `sts:AssumeRoleWithWebIdentity` takes it. The error names `setting`, where the value came
/// from, and quotes the value (an ARN is not secret), cut to a readable length.
pub fn check_role_arn(setting: &str, arn: &str) -> Result<(), InvalidSetting> {
    let shown: String = arn.chars().take(120).collect();
    let fail = || {
        InvalidSetting::new(
            setting.to_string(),
            format!(
                "{shown:?} is not an IAM role ARN such as arn:aws:iam::123456789012:role/ecr-pull"
            ),
        )
    };
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(fail());
    };
    let partition_ok = !partition.is_empty()
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let name_ok = resource.strip_prefix("role/").is_some_and(|name| {
        !name.is_empty()
            && !name.ends_with('/')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
    });
    if partition_ok && account_ok && name_ok && arn.len() <= 2048 {
        Ok(())
    } else {
        Err(fail())
    }
}

/// A registry host as a kubelet match pattern: DNS labels of letters, digits, `-` and `*`
/// globs, an optional numeric port; no scheme, user-info, path or brackets. `setting` names
/// the entry, for the error.
fn check_host(setting: &str, host: &str) -> Result<(), InvalidSetting> {
    const FORM: &str = "expected host[:port] such as mirror.example.com:5000 (no scheme, no path)";
    let fail = |problem: String| InvalidSetting::new(setting.to_string(), problem);
    if host.contains("://") || host.contains('/') {
        return Err(fail(format!("host has a scheme or a path; {FORM}")));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        if !port.bytes().all(|b| b.is_ascii_digit()) || !matches!(port.parse::<u16>(), Ok(1..)) {
            return Err(fail(format!(
                "port {port:?} is not a number from 1 to 65535; {FORM}"
            )));
        }
    }
    let labels_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        });
    if !labels_ok || name.len() > 253 {
        return Err(fail(format!(
            "host name {name:?} must be DNS labels of letters, digits, '-' or '*' globs; {FORM}"
        )));
    }
    match parse_schemeless(host.as_bytes()) {
        Ok(p) if p.path.is_empty() && p.host == host.as_bytes() => Ok(()),
        _ => Err(fail(format!("host does not parse as a registry; {FORM}"))),
    }
}

/// An AWS region name: lower-case letters, digits and `-`, starting with a letter, ending
/// with a digit, with at least one `-` (`us-west-2`, `eusc-de-east-1`, `us-iso-east-1`).
/// `setting` names the entry, for the error.
fn check_region(setting: &str, region: &str) -> Result<(), InvalidSetting> {
    let b = region.as_bytes();
    let ok = (4..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_digit()
        && b.contains(&b'-')
        && !region.contains("--")
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidSetting::new(
            setting.to_string(),
            format!("region {region:?} is not an AWS region name such as us-west-2"),
        ))
    }
}

/// `registryId` must be a string: an unquoted YAML number loses leading zeros.
fn quoted_registry_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a quoted 12-digit account ID such as \"123456789012\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Err(E::custom(format!(
                "registryId {v} must be quoted (\"{v:012}\"): YAML reads it as a number and drops leading zeros"
            )))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(E::invalid_type(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, String> {
        serde_norway::from_str::<Config>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_section_is_the_default() {
        assert_eq!(parse("{}").unwrap(), Config::default());
        assert_eq!(parse("mirrors: []").unwrap(), Config::default());
    }

    #[test]
    fn service_account_settings_are_read_and_role_arns_checked() {
        let c = parse("serviceAccountRoleArn: arn:aws-us-gov:iam::123456789012:role/team/ecr-pull\nnodeIdentityFallback: false\n").unwrap();
        assert_eq!(
            c.service_account_role_arn.as_deref(),
            Some("arn:aws-us-gov:iam::123456789012:role/team/ecr-pull")
        );
        assert!(!c.node_identity_fallback);
        assert!(Config::default().node_identity_fallback);
        for ok in [
            "arn:aws:iam::123456789012:role/ecr-pull",
            "arn:aws-cn:iam::123456789012:role/a/b/c+=,.@_-",
            "arn:aws-iso-b:iam::123456789012:role/x",
        ] {
            assert_eq!(
                check_role_arn("ecr.serviceAccountRoleArn", ok),
                Ok(()),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_full_mirror_entry_is_read_field_by_field() {
        let c = parse(
            "mirrors:\n- host: mirror.example.com:5000\n  region: us-west-2\n  registryId: \"012345678901\"\n  fips: true\n  dualStack: true\n",
        )
        .unwrap();
        assert_eq!(
            c.mirrors,
            [Mirror {
                host: "mirror.example.com:5000".into(),
                region: "us-west-2".into(),
                registry_id: Some("012345678901".into()),
                fips: true,
                dual_stack: true,
            }]
        );
    }

    #[test]
    fn errors_name_the_entry() {
        let cases = [
            ("- {host: a.example.com, region: us-west-2}\n- {host: 'https://b.example.com', region: us-west-2}", "ecr.mirrors[1] (host \"https://b.example.com\"): host has a scheme"),
            ("- {host: a.example.com/team, region: us-west-2}", "ecr.mirrors[0] (host \"a.example.com/team\"): host has a scheme or a path"),
            ("- {host: 'a.example.com:http', region: us-west-2}", "port \"http\" is not a number"),
            ("- {host: 'a.example.com:0', region: us-west-2}", "port \"0\""),
            ("- {host: 'a.example.com:70000', region: us-west-2}", "port \"70000\""),
            ("- {host: 'a..example.com', region: us-west-2}", "must be DNS labels"),
            ("- {host: 'user@a.example.com', region: us-west-2}", "must be DNS labels"),
            ("- {host: 'a_b.example.com', region: us-west-2}", "must be DNS labels"),
            ("- {host: '', region: us-west-2}", "must be DNS labels"),
            ("- {host: a.example.com, region: US-WEST-2}", "region \"US-WEST-2\" is not an AWS region"),
            ("- {host: a.example.com, region: uswest2}", "region \"uswest2\""),
            ("- {host: a.example.com, region: ''}", "region \"\""),
            ("- {host: a.example.com, region: us-west-2, registryId: '12345'}", "registryId \"12345\" is not a 12-digit"),
            ("- {host: a.example.com, region: us-west-2, registryId: 'abcdefghijkl'}", "is not a 12-digit"),
            ("- {host: a.example.com, region: us-west-2, registryId: 12345678901}", "must be quoted (\"012345678901\")"),
            ("- {host: a.example.com, region: us-west-2}\n- {host: a.example.com, region: eu-west-1}", "ecr.mirrors[1] (host \"a.example.com\"): the same host as ecr.mirrors[0]"),
            ("- {host: a.example.com, region: us-west-2, bogus: 1}", "unknown field `bogus`"),
            ("- {host: a.example.com}", "missing field `region`"),
        ];
        for (mirrors, want) in cases {
            let e = parse(&format!("mirrors:\n{mirrors}\n")).unwrap_err();
            assert!(e.contains(want), "{mirrors}: {e}");
        }
        for (yaml, want) in [
            (
                "serviceAccountRoleArn: arn:aws:iam::12345:role/x",
                "ecr.serviceAccountRoleArn: \"arn:aws:iam::12345:role/x\" is not an IAM role ARN",
            ),
            (
                "serviceAccountRoleArn: arn:aws:iam::123456789012:user/x",
                "is not an IAM role ARN",
            ),
            (
                "serviceAccountRoleArn: arn:aws:s3::123456789012:role/x",
                "is not an IAM role ARN",
            ),
            (
                "serviceAccountRoleArn: 'arn:aws:iam::123456789012:role/'",
                "is not an IAM role ARN",
            ),
            (
                "serviceAccountRoleArn: 'arn:aws:iam::123456789012:role/a b'",
                "is not an IAM role ARN",
            ),
            ("nodeIdentityFallback: 'yes'", "invalid type"),
        ] {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
        let e = parse("mirorrs: []").unwrap_err();
        assert!(e.contains("unknown field `mirorrs`"), "{e}");
    }

    #[test]
    fn matching_uses_host_boundaries_and_ports() {
        let c = parse(
            "mirrors:\n- {host: 'mirror.example.com:5000', region: us-west-2}\n- {host: mirror.example.com, region: eu-west-1}\n- {host: '*.cache.example.com', region: ap-south-1}\n",
        )
        .unwrap();
        let region = |image: &str| c.mirror_for(&Target::new(image)).map(|m| m.region.as_str());
        assert_eq!(
            region("mirror.example.com:5000/team/app"),
            Some("us-west-2")
        );
        assert_eq!(region("mirror.example.com/team/app"), Some("eu-west-1"));
        assert_eq!(region("a.cache.example.com/x"), Some("ap-south-1"));
        for other in [
            "mirror.example.com:5001/app",
            "evil-mirror.example.com/app",
            "mirror.example.com.evil.io/app",
            "x.mirror.example.com/app",
            "cache.example.com/x",
            "a.b.cache.example.com/x",
            "a.cache.example.com:443/x",
            "Mirror.example.com/app",
            "docker.io/library/mirror.example.com",
        ] {
            assert_eq!(region(other), None, "{other}");
        }
    }

    /// The shipped example parses, and says what its comments say.
    #[test]
    fn example_file_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/keyring-ecr-mirrors.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        let section = doc.get("ecr").expect("an ecr section").clone();
        let c: Config = serde_norway::from_value(section).unwrap();
        let m = c
            .mirror_for(&Target::new("mirror.example.com:5000/team/app"))
            .unwrap();
        assert_eq!(
            (m.region.as_str(), m.registry_id.as_deref()),
            ("us-west-2", Some("123456789012"))
        );
        assert!(c.mirrors.len() >= 2, "{c:?}");
        assert!(c.node_identity_fallback);
        assert_eq!(c.service_account_role_arn, None);
    }
}
