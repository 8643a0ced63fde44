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

#[cfg(test)]
mod tests {
    use super::*;

    /// (host, Some((account, region, fips, partition))) or None for a non-match.
    type Case = (
        &'static str,
        Option<(&'static str, &'static str, bool, Partition)>,
    );

    const A: &str = "123456789012";

    #[test]
    fn private_hosts_of_every_partition() {
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
    fn non_matches() {
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
    fn dual_stack_and_sdk_region() {
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
