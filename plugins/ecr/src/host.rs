//! Which hosts are ECR registries, parsed by hand (no regex on any path).
//!
//! Private registries follow the pattern that both upstream Go plugins (cloud-provider-aws
//! `ecr-credential-provider` and `amazon-ecr-credential-helper`) match with one regex:
//!
//! ```text
//! ^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$
//! ```
//!
//! [`PrivateHost::parse`] accepts exactly the strings that regex accepts (same case rules:
//! only the region may hold upper-case letters), and returns its groups: the 12-digit
//! account, `-fips`, the region and the [`Partition`] suffix. Like the regex it keeps the
//! quirk that `dkr-ecr` and `dkr.ecr` are both accepted with every suffix. Dual-stack is
//! decided by the suffix (`on.aws`, `on.amazonwebservices.com.cn`), which is where AWS
//! serves the dual-stack registry names (`<account>.dkr-ecr.<region>.on.aws`).
//!
//! The input is a host name without port: the caller strips the port first, as upstream
//! does with Go's `url.Hostname()`. A string with a port does not parse.
//!
//! ECR Public answers on exactly two hosts, [`PUBLIC_HOSTS`]; the second is its dual-stack
//! name.
//!
//! [`route`] puts it together for an image, in this order: a host matching an entry of the
//! config's `mirrors` ([`crate::config`]); an ECR Public host; a private registry host (the
//! image's port ignored for these two, as upstream does); with `ecr.otherHosts:
//! defaultRegion`, any other host. The [`Route`] says which [`Call`] gets the token: which
//! API ([`Api`]), in which region, with which endpoint variant. Anything else is not an ECR
//! image, decided from the host alone: no SDK, runtime, TLS or regex is built for it.

use keyring_api::backend::Query;

use crate::config::{self, Config, Mirror};

/// The ECR Public registry hosts: `public.ecr.aws` and the dual-stack `ecr-public.aws.com`.
pub const PUBLIC_HOSTS: [&str; 2] = ["public.ecr.aws", "ecr-public.aws.com"];

/// The region ECR Public's API lives in, whatever the caller's region.
pub const PUBLIC_REGION: &str = "us-east-1";

/// The DNS suffix of a private registry host, which names its AWS partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partition {
    /// `amazonaws.com`: commercial regions and GovCloud.
    Aws,
    /// `amazonaws.com.cn`: China.
    AwsCn,
    /// `amazonaws.eu`: the European Sovereign Cloud.
    AwsEusc,
    /// `on.aws`: dual-stack (IPv4 and IPv6) names of commercial regions.
    AwsDualStack,
    /// `on.amazonwebservices.com.cn`: dual-stack names in China.
    AwsCnDualStack,
    /// `c2s.ic.gov`: ISO.
    AwsIso,
    /// `sc2s.sgov.gov`: ISO-B.
    AwsIsoB,
    /// `cloud.adc-e.uk`: ISO-E.
    AwsIsoE,
    /// `csp.hci.ic.gov`: ISO-F.
    AwsIsoF,
}

impl Partition {
    const ALL: [Partition; 9] = [
        Partition::Aws,
        Partition::AwsCn,
        Partition::AwsEusc,
        Partition::AwsDualStack,
        Partition::AwsCnDualStack,
        Partition::AwsIso,
        Partition::AwsIsoB,
        Partition::AwsIsoE,
        Partition::AwsIsoF,
    ];

    /// The DNS suffix, without the leading dot.
    pub fn suffix(self) -> &'static str {
        match self {
            Partition::Aws => "amazonaws.com",
            Partition::AwsCn => "amazonaws.com.cn",
            Partition::AwsEusc => "amazonaws.eu",
            Partition::AwsDualStack => "on.aws",
            Partition::AwsCnDualStack => "on.amazonwebservices.com.cn",
            Partition::AwsIso => "c2s.ic.gov",
            Partition::AwsIsoB => "sc2s.sgov.gov",
            Partition::AwsIsoE => "cloud.adc-e.uk",
            Partition::AwsIsoF => "csp.hci.ic.gov",
        }
    }

    /// The suffix's partition, for an exact suffix.
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        Partition::ALL.into_iter().find(|p| p.suffix() == suffix)
    }

    /// Whether registry names under this suffix are the dual-stack ones.
    pub fn is_dual_stack(self) -> bool {
        matches!(self, Partition::AwsDualStack | Partition::AwsCnDualStack)
    }
}

/// The parts of a private ECR registry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateHost {
    /// The 12-digit account ID (the registry ID).
    pub account: String,
    /// The region label as written (the regex allows upper case and `_`).
    pub region: String,
    /// `dkr.ecr-fips` / `dkr-ecr-fips`: the registry's FIPS endpoint.
    pub fips: bool,
    /// The DNS suffix.
    pub partition: Partition,
}

impl PrivateHost {
    /// Parses a host name (no port) with the upstream regex's semantics; `None` when it is
    /// not a private ECR registry host.
    pub fn parse(host: &str) -> Option<Self> {
        // (\d{12})
        let account = host.get(..12)?;
        if !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // \.dkr[\.\-]ecr
        let rest = host[12..].strip_prefix(".dkr")?;
        let rest = rest
            .strip_prefix('.')
            .or_else(|| rest.strip_prefix('-'))?
            .strip_prefix("ecr")?;
        // (\-fips)?\.  The region cannot start with '-', so there is no ambiguity.
        let (fips, rest) = match rest.strip_prefix("-fips.") {
            Some(rest) => (true, rest),
            None => (false, rest.strip_prefix('.')?),
        };
        // ([a-zA-Z0-9][a-zA-Z0-9-_]*)\.  The region has no dot, so it ends at the first one.
        let (region, suffix) = rest.split_once('.')?;
        let mut chars = region.bytes();
        if !chars.next().is_some_and(|b| b.is_ascii_alphanumeric())
            || !chars.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let partition = Partition::from_suffix(suffix)?;
        Some(PrivateHost {
            account: account.to_string(),
            region: region.to_string(),
            fips,
            partition,
        })
    }

    /// The region as the AWS SDK wants it: AWS region names are lower case, and a host name
    /// is case-insensitive, so `US-EAST-1` in an image name means `us-east-1`.
    pub fn sdk_region(&self) -> String {
        self.region.to_ascii_lowercase()
    }

    /// Whether the host is a dual-stack registry name.
    pub fn dual_stack(&self) -> bool {
        self.partition.is_dual_stack()
    }
}

/// Whether `host` (no port) is an ECR Public registry host; `Some(dual_stack)` if so.
pub fn public_host(host: &str) -> Option<bool> {
    match host {
        "public.ecr.aws" => Some(false),
        "ecr-public.aws.com" => Some(true),
        _ => None,
    }
}

/// Where an image's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A configured mirror.
    Mirror(Mirror),
    /// ECR Public; `dual_stack` for `ecr-public.aws.com`.
    Public {
        /// The dual-stack host.
        dual_stack: bool,
    },
    /// A private registry host.
    Private(PrivateHost),
    /// Another host, under `ecr.otherHosts: defaultRegion`.
    DefaultRegion,
}

/// Where the image's token would come from, or `None` when it is not an ECR image.
pub fn route(config: &Config, query: &Query) -> Option<Route> {
    if let Some(m) = config.mirror_for(&query.target) {
        return Some(Route::Mirror(m.clone()));
    }
    let host = query.image.host();
    if let Some(dual_stack) = public_host(host) {
        return Some(Route::Public { dual_stack });
    }
    PrivateHost::parse(host)
        .map(Route::Private)
        .or((config.other_hosts() == config::OtherHosts::DefaultRegion)
            .then_some(Route::DefaultRegion))
}

impl Route {
    /// The call to make. `variants_from_host`: whether a FIPS or dual-stack registry host
    /// asks the FIPS or dual-stack API endpoint (`ecr.endpointVariantsFromHost`; upstream
    /// never does). A mirror's variants are its entry's, either way.
    pub fn call(&self, variants_from_host: bool) -> Call {
        match self {
            Route::Mirror(m) => Call {
                api: Api::Private,
                region: Some(m.region.clone()),
                sts_region: Some(m.region.clone()),
                fips: m.fips,
                dual_stack: m.dual_stack,
            },
            Route::Public { dual_stack } => Call {
                api: Api::Public,
                region: Some(PUBLIC_REGION.into()),
                sts_region: None,
                fips: false,
                dual_stack: *dual_stack && variants_from_host,
            },
            Route::Private(h) => Call {
                api: Api::Private,
                region: Some(h.sdk_region()),
                sts_region: Some(h.sdk_region()),
                fips: h.fips && variants_from_host,
                dual_stack: h.dual_stack() && variants_from_host,
            },
            Route::DefaultRegion => Call {
                api: Api::Private,
                region: None,
                sts_region: None,
                fips: false,
                dual_stack: false,
            },
        }
    }

    /// Where the credential comes from, for the answer's `source` and messages.
    pub fn describe(&self) -> String {
        match self {
            Route::Mirror(m) => match &m.registry_id {
                Some(id) => format!("ECR {} via mirror {} (account {id})", m.region, m.host),
                None => format!("ECR {} via mirror {}", m.region, m.host),
            },
            Route::Public { .. } => format!("ECR Public {PUBLIC_REGION}"),
            Route::Private(h) => format!("ECR {} (account {})", h.sdk_region(), h.account),
            Route::DefaultRegion => "ECR of the default region (ecr.otherHosts)".into(),
        }
    }

    /// Whether the image's host alone does not say which registry answers (a mirror, another
    /// host): messages then name the route too.
    pub fn is_indirect(&self) -> bool {
        matches!(self, Route::Mirror(_) | Route::DefaultRegion)
    }
}

/// Which API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// ECR (`ecr:GetAuthorizationToken`).
    Private,
    /// ECR Public (`ecr-public:GetAuthorizationToken`, always in us-east-1).
    Public,
}

impl Api {
    /// The SDK service ID, which also names its endpoint variables.
    pub fn service_id(self) -> &'static str {
        match self {
            Api::Private => "ECR",
            Api::Public => "ECR PUBLIC",
        }
    }

    /// The endpoint override variable specific to this API.
    pub fn endpoint_env(self) -> &'static str {
        match self {
            Api::Private => "AWS_ENDPOINT_URL_ECR",
            Api::Public => "AWS_ENDPOINT_URL_ECR_PUBLIC",
        }
    }

    /// The API's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Api::Private => "ECR",
            Api::Public => "ECR Public",
        }
    }

    /// The IAM permissions the call needs, for messages.
    pub fn permission(self) -> &'static str {
        match self {
            Api::Private => "ecr:GetAuthorizationToken",
            Api::Public => "ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken",
        }
    }
}

/// What to ask.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which API.
    pub api: Api,
    /// The SDK region; `None` for the SDK's default region (`AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, the profile, then the instance metadata service).
    pub region: Option<String>,
    /// The region of STS when a pod's role is assumed: the registry's for a private host or
    /// a mirror; `None` for the SDK's default region (ECR Public and other hosts, as
    /// upstream: a regional STS VPC endpoint keeps being used), which falls back to
    /// [`Call::region`] when no default region is set (upstream fails there).
    pub sts_region: Option<String>,
    /// Use the FIPS endpoint.
    pub fips: bool,
    /// Use the dual-stack endpoint.
    pub dual_stack: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (host, Some((account, region, fips, partition))) or None for a non-match.
    type Case = (
        &'static str,
        Option<(&'static str, &'static str, bool, Partition)>,
    );

    const A: &str = "123456789012";

    fn query(image: &str) -> Query {
        Query::new(keyring_api::ImageName::parse(image).unwrap())
    }

    fn config(yaml: &str) -> Config {
        serde_norway::from_str(yaml).unwrap()
    }

    fn route_of(config: &Config, image: &str) -> Option<Route> {
        route(config, &query(image))
    }

    #[test]
    fn images_are_routed_by_their_host_mirrors_first() {
        let p = config(
            "mirrors:\n- {host: 'mirror.example.com:5000', region: us-west-2, registryId: '210987654321'}\n- {host: 123456789012.dkr.ecr.us-east-1.amazonaws.com, region: eu-west-1}\n",
        );
        let route = |image: &str| route_of(&p, image);
        assert_eq!(
            route("mirror.example.com:5000/team/app").and_then(|r| r.call(true).region),
            Some("us-west-2".into())
        );
        // A mirror entry wins over the host parser.
        assert_eq!(
            route("123456789012.dkr.ecr.us-east-1.amazonaws.com/app")
                .and_then(|r| r.call(true).region),
            Some("eu-west-1".into())
        );
        // Other hosts: nothing, or the default region when asked for.
        assert_eq!(route("docker.io/library/nginx"), None);
        let other = config("otherHosts: defaultRegion\n");
        let r = route_of(&other, "mirror.internal:5000/library/nginx").unwrap();
        assert_eq!(r, Route::DefaultRegion);
        assert_eq!(r.call(true).region, None);
        assert_eq!(
            route("public.ecr.aws/nginx/nginx:1"),
            Some(Route::Public { dual_stack: false })
        );
        assert_eq!(
            route("ecr-public.aws.com/x/y"),
            Some(Route::Public { dual_stack: true })
        );
        let r = route("210987654321.dkr-ecr-fips.us-east-2.on.aws/app@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap();
        let c = r.call(true);
        assert_eq!(
            (c.region.as_deref(), c.fips, c.dual_stack),
            (Some("us-east-2"), true, true)
        );
        // As upstream: the region's standard API endpoint whatever the host's variant.
        let c = r.call(false);
        assert_eq!(
            (c.region.as_deref(), c.fips, c.dual_stack),
            (Some("us-east-2"), false, false)
        );
        let public = route("ecr-public.aws.com/x/y").unwrap();
        assert!(public.call(true).dual_stack && !public.call(false).dual_stack);
        // The port is ignored for ECR hosts, as upstream does.
        assert!(route("210987654321.dkr.ecr.us-east-2.amazonaws.com:443/app").is_some());
        for other in [
            "nginx",
            "docker.io/library/nginx",
            "gcr.io/x/y",
            "mirror.example.com/team/app",
            "mirror.example.com:5001/team/app",
            "public.ecr.aws.evil.io/x",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io/app",
            "evil.io/123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
            "localhost:5000/public.ecr.aws",
        ] {
            assert_eq!(route(other), None, "{other}");
        }
    }

    #[test]
    fn private_hosts_of_every_partition_parse_into_their_parts() {
        use Partition::*;
        let cases: &[Case] = &[
            // Commercial, GovCloud, FIPS.
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                Some((A, "us-east-1", false, Aws)),
            ),
            (
                "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
                Some((A, "us-east-1", true, Aws)),
            ),
            (
                "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com",
                Some((A, "us-gov-west-1", false, Aws)),
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                Some((A, "us-gov-west-1", true, Aws)),
            ),
            (
                "000000000000.dkr.ecr.ap-southeast-5.amazonaws.com",
                Some(("000000000000", "ap-southeast-5", false, Aws)),
            ),
            // China.
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                Some((A, "cn-north-1", false, AwsCn)),
            ),
            (
                "123456789012.dkr.ecr-fips.cn-northwest-1.amazonaws.com.cn",
                Some((A, "cn-northwest-1", true, AwsCn)),
            ),
            // European Sovereign Cloud.
            (
                "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
                Some((A, "eusc-de-east-1", false, AwsEusc)),
            ),
            // Dual-stack, commercial and China.
            (
                "123456789012.dkr-ecr.us-east-1.on.aws",
                Some((A, "us-east-1", false, AwsDualStack)),
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-1.on.aws",
                Some((A, "us-east-1", true, AwsDualStack)),
            ),
            (
                "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
                Some((A, "cn-north-1", false, AwsCnDualStack)),
            ),
            // ISO partitions.
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                Some((A, "us-iso-east-1", false, AwsIso)),
            ),
            (
                "123456789012.dkr.ecr-fips.us-iso-east-1.c2s.ic.gov",
                Some((A, "us-iso-east-1", true, AwsIso)),
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                Some((A, "us-isob-east-1", false, AwsIsoB)),
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                Some((A, "eu-isoe-west-1", false, AwsIsoE)),
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                Some((A, "us-isof-south-1", false, AwsIsoF)),
            ),
            // The regex's quirk: both separators with every suffix.
            (
                "123456789012.dkr-ecr.us-east-1.amazonaws.com",
                Some((A, "us-east-1", false, Aws)),
            ),
            (
                "123456789012.dkr.ecr.us-east-1.on.aws",
                Some((A, "us-east-1", false, AwsDualStack)),
            ),
            // The region class: upper case, digits, '_' and '-' after the first character.
            (
                "123456789012.dkr.ecr.US-EAST-1.amazonaws.com",
                Some((A, "US-EAST-1", false, Aws)),
            ),
            (
                "123456789012.dkr.ecr.1region_x-.amazonaws.com",
                Some((A, "1region_x-", false, Aws)),
            ),
            (
                "123456789012.dkr.ecr.a.amazonaws.com",
                Some((A, "a", false, Aws)),
            ),
        ];
        check(cases);
    }

    #[test]
    fn hosts_outside_the_upstream_pattern_do_not_parse() {
        let cases: &[Case] = &[
            // Account: exactly 12 ASCII digits.
            ("12345678901.dkr.ecr.us-east-1.amazonaws.com", None),
            ("1234567890123.dkr.ecr.us-east-1.amazonaws.com", None),
            ("12345678901a.dkr.ecr.us-east-1.amazonaws.com", None),
            ("abcdefghijkl.dkr.ecr.us-east-1.amazonaws.com", None),
            ("１23456789012.dkr.ecr.us-east-1.amazonaws.com", None),
            (".dkr.ecr.us-east-1.amazonaws.com", None),
            ("x123456789012.dkr.ecr.us-east-1.amazonaws.com", None),
            // Suffixes: exact, nothing before or after.
            ("123456789012.dkr.ecr.us-east-1.amazonaws.hacker.com", None),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com.lol", None),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.gov", None),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com.", None),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.cn", None),
            ("123456789012.dkr.ecr.us-east-1.on.aws.com", None),
            ("123456789012.dkr.ecr.us-east-1.ic.gov", None),
            ("123456789012.dkr.ecr.us-east-1.evil.c2s.ic.gov", None),
            ("123456789012.dkr.ecr.us-east-1", None),
            ("123456789012.dkr.ecr.us-east-1.", None),
            // Ports are stripped by the caller; with one the host does not parse.
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com:443", None),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com:5000", None),
            // Upper case outside the region.
            ("123456789012.DKR.ECR.us-east-1.amazonaws.com", None),
            ("123456789012.dkr.ecr.us-east-1.AMAZONAWS.COM", None),
            ("123456789012.dkr.ecr-FIPS.us-east-1.amazonaws.com", None),
            // The dkr/ecr labels.
            ("123456789012.dkr_ecr.us-east-1.amazonaws.com", None),
            ("123456789012.dkr..ecr.us-east-1.amazonaws.com", None),
            ("123456789012.ecr.us-east-1.amazonaws.com", None),
            ("123456789012.dkr.ecr.fips.us-east-1.amazonaws.com", None),
            ("123456789012.dkr.ecrfips.us-east-1.amazonaws.com", None),
            ("123456789012.dkr.ecr-fips-us-east-1.amazonaws.com", None),
            // The region: non-empty, starts alphanumeric, no other characters, no dots.
            ("123456789012.dkr.ecr..amazonaws.com", None),
            ("123456789012.dkr.ecr.-us-east-1.amazonaws.com", None),
            ("123456789012.dkr.ecr._x.amazonaws.com", None),
            ("123456789012.dkr.ecr.us east.amazonaws.com", None),
            ("123456789012.dkr.ecr.us.east.amazonaws.com", None),
            ("123456789012.dkr.ecr.üs-east-1.amazonaws.com", None),
            // Other AWS hosts.
            ("public.ecr.aws", None),
            ("api.ecr.us-east-1.amazonaws.com", None),
            ("", None),
        ];
        check(cases);
    }

    fn check(cases: &[Case]) {
        for &(host, want) in cases {
            let got = PrivateHost::parse(host);
            let got = got
                .as_ref()
                .map(|h| (h.account.as_str(), h.region.as_str(), h.fips, h.partition));
            assert_eq!(got, want, "{host:?}");
        }
    }

    #[test]
    fn dual_stack_comes_from_the_suffix_and_the_sdk_region_is_lower_case() {
        let h = PrivateHost::parse("123456789012.dkr-ecr.us-east-1.on.aws").unwrap();
        assert!(h.dual_stack());
        let h = PrivateHost::parse("123456789012.dkr.ecr.US-East-1.amazonaws.com").unwrap();
        assert!(!h.dual_stack());
        assert_eq!(h.sdk_region(), "us-east-1");
    }

    #[test]
    fn public_hosts_are_exact() {
        assert_eq!(public_host("public.ecr.aws"), Some(false));
        assert_eq!(public_host("ecr-public.aws.com"), Some(true));
        for h in [
            "Public.ecr.aws",
            "public.ecr.aws.",
            "xpublic.ecr.aws",
            "a.public.ecr.aws",
            "public.ecr.aws:443",
            "ecr-public.aws",
            "public.ecr.amazonaws.com",
        ] {
            assert_eq!(public_host(h), None, "{h:?}");
        }
        for h in PUBLIC_HOSTS {
            assert!(public_host(h).is_some());
        }
    }
}
