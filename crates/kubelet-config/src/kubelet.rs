//! Which kubelet the config is checked for: its minor release (`--kubelet-version`) and the
//! two feature gates that change how it reads a `CredentialProviderConfig`
//! (`--feature-gates`).
//!
//! Release facts (spec 1.1 and 2.4):
//!
//! | release | change |
//! |---|---|
//! | 1.20 | plugins, config `kubelet.config.k8s.io/v1alpha1`, gate `KubeletCredentialProviders` (off) |
//! | 1.24 | config and protocol `v1beta1`; `KubeletCredentialProviders` on by default |
//! | 1.26 | config and protocol `v1`; `KubeletCredentialProviders` GA, locked on (gate gone in 1.28) |
//! | 1.33 | `tokenAttributes` (config `v1`), gate `KubeletServiceAccountTokenForCredentialProviders` (off) |
//! | 1.34 | that gate on by default; `tokenAttributes.cacheType` added and required; config directories |

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The gate that enabled plugins at all before 1.26.
pub const GATE_PROVIDERS: &str = "KubeletCredentialProviders";
/// The gate that enables `tokenAttributes` (KEP-4412).
pub const GATE_SA_TOKEN: &str = "KubeletServiceAccountTokenForCredentialProviders";

/// A kubelet minor release `1.NN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeletVersion(u32);

impl KubeletVersion {
    /// The first release with credential provider plugins.
    pub const OLDEST: KubeletVersion = KubeletVersion(20);
    /// The newest behaviour this validator knows (spec "newest"); later releases behave alike.
    pub const NEWEST: KubeletVersion = KubeletVersion(35);

    /// `1.minor`.
    pub fn new(minor: u32) -> Self {
        KubeletVersion(minor)
    }

    /// The minor number.
    pub fn minor(self) -> u32 {
        self.0
    }
}

impl fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.0)
    }
}

impl FromStr for KubeletVersion {
    type Err = String;

    /// Accepts `1.34`, `v1.34`, `1.34.2` and `v1.34.2-eks-1a2b` (what `kubelet --version` prints).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a kubelet version: expected 1.NN, for example 1.34");
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let rest = t.strip_prefix("1.").ok_or_else(bad)?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let minor: u32 = rest[..digits].parse().map_err(|_| bad())?;
        let tail = &rest[digits..];
        if !(tail.is_empty() || tail.starts_with(['.', '-', '+'])) {
            return Err(bad());
        }
        if minor < Self::OLDEST.0 {
            return Err(format!(
                "kubelet 1.{minor} has no credential provider plugins (they appeared in {})",
                Self::OLDEST
            ));
        }
        Ok(KubeletVersion(minor))
    }
}

/// `--feature-gates` as the kubelet takes it: `Name=bool,Name=bool`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureGates(BTreeMap<String, bool>);

impl FeatureGates {
    /// The explicit setting of `gate`, if any.
    pub fn get(&self, gate: &str) -> Option<bool> {
        self.0.get(gate).copied()
    }

    /// Adds `other`'s settings; later settings win, as with repeated kubelet flags.
    pub fn extend(&mut self, other: &FeatureGates) {
        self.0.extend(other.0.iter().map(|(k, v)| (k.clone(), *v)));
    }
}

impl FromStr for FeatureGates {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut gates = BTreeMap::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("missing bool value for {item:?}: expected Name=true"))?;
            let value = parse_go_bool(value.trim())
                .ok_or_else(|| format!("invalid value of {name}: {value:?}, expected a bool"))?;
            gates.insert(name.trim().to_string(), value);
        }
        Ok(FeatureGates(gates))
    }
}

/// Go's `strconv.ParseBool`, which the kubelet's feature-gate flag uses.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The kubelet the config is checked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubelet {
    /// Its release.
    pub version: KubeletVersion,
    /// `KubeletCredentialProviders` in effect: without it the config is not read at all.
    pub providers_gate: bool,
    /// `KubeletServiceAccountTokenForCredentialProviders` in effect.
    pub sa_token_gate: bool,
}

impl Kubelet {
    /// The newest kubelet with default gates.
    pub fn newest() -> Self {
        Kubelet::new(KubeletVersion::NEWEST, &FeatureGates::default()).0
    }

    /// The kubelet `version` with `gates`, and warnings about gates that kubelet would refuse
    /// or that switch plugins off.
    pub fn new(version: KubeletVersion, gates: &FeatureGates) -> (Self, Vec<String>) {
        let minor = version.minor();
        let mut warnings = Vec::new();
        let providers_gate = match gates.get(GATE_PROVIDERS) {
            _ if minor >= 28 => {
                if gates.get(GATE_PROVIDERS).is_some() {
                    warnings.push(format!(
                        "kubelet {version} no longer knows the feature gate {GATE_PROVIDERS} \
                         (removed in 1.28) and refuses to start with it; drop it"
                    ));
                }
                true
            }
            Some(false) if minor >= 26 => {
                warnings.push(format!(
                    "{GATE_PROVIDERS} is GA and locked to true in kubelet {version}: \
                     setting it to false makes the kubelet refuse to start"
                ));
                true
            }
            Some(v) => v,
            None => minor >= 24,
        };
        if !providers_gate {
            warnings.push(format!(
                "kubelet {version} ignores this config: it reads it only with \
                 --feature-gates={GATE_PROVIDERS}=true"
            ));
        }
        let sa_token_gate = if minor < 33 {
            if gates.get(GATE_SA_TOKEN).is_some() {
                warnings.push(format!(
                    "kubelet {version} does not know the feature gate {GATE_SA_TOKEN} \
                     (added in 1.33) and refuses to start with it; drop it"
                ));
            }
            false
        } else {
            gates.get(GATE_SA_TOKEN).unwrap_or(minor >= 34)
        };
        let kubelet = Kubelet {
            version,
            providers_gate,
            sa_token_gate,
        };
        (kubelet, warnings)
    }

    /// The config `apiVersion`s this kubelet decodes (group `kubelet.config.k8s.io`).
    pub fn config_versions(&self) -> Vec<&'static str> {
        let minor = self.version.minor();
        let mut v = vec!["v1alpha1"];
        if minor >= 24 {
            v.push("v1beta1");
        }
        if minor >= 26 {
            v.push("v1");
        }
        v
    }

    /// The provider `apiVersion`s (protocol versions) this kubelet speaks, sorted as the
    /// kubelet lists them in its error message.
    pub fn provider_api_versions(&self) -> Vec<&'static str> {
        let minor = self.version.minor();
        let mut v = vec!["credentialprovider.kubelet.k8s.io/v1alpha1"];
        if minor >= 24 {
            v.push("credentialprovider.kubelet.k8s.io/v1beta1");
        }
        if minor >= 26 {
            v.push("credentialprovider.kubelet.k8s.io/v1");
        }
        v.sort_unstable();
        v
    }

    /// The release that first accepts the config or provider version `v` (`v1beta1`: 1.24).
    pub fn release_of(version: &str) -> &'static str {
        match version.rsplit('/').next() {
            Some("v1beta1") => "1.24",
            Some("v1") => "1.26",
            _ => "1.20",
        }
    }

    /// Whether config `v1` has `tokenAttributes` (1.33+).
    pub fn has_token_attributes(&self) -> bool {
        self.version.minor() >= 33
    }

    /// Whether `tokenAttributes` has `cacheType`, and requires it (1.34+).
    pub fn has_cache_type(&self) -> bool {
        self.version.minor() >= 34
    }

    /// Whether the config path may be a directory, and names must be unique when the files
    /// are merged (1.34+).
    pub fn reads_directories(&self) -> bool {
        self.version.minor() >= 34
    }

    /// The effective gates, for the report.
    pub fn gates(&self) -> BTreeMap<&'static str, bool> {
        BTreeMap::from([
            (GATE_PROVIDERS, self.providers_gate),
            (GATE_SA_TOKEN, self.sa_token_gate),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_kubelet_prints_them() {
        for (s, minor) in [
            ("1.34", 34),
            ("v1.34", 34),
            ("1.34.2", 34),
            ("v1.30.1-eks-a1b2c3", 30),
            (" 1.20 ", 20),
            ("1.99", 99),
        ] {
            assert_eq!(
                s.parse::<KubeletVersion>(),
                Ok(KubeletVersion(minor)),
                "{s}"
            );
        }
        for bad in ["", "1", "2.30", "1.x", "1.34x", "134", "v1."] {
            assert!(bad.parse::<KubeletVersion>().is_err(), "{bad:?}");
        }
        let e = "1.19".parse::<KubeletVersion>().unwrap_err();
        assert!(e.contains("1.20"), "{e}");
        assert_eq!(KubeletVersion::NEWEST.to_string(), "1.35");
    }

    #[test]
    fn feature_gates_parse_like_the_kubelet_flag() {
        let g: FeatureGates = "A=true, B=F,,C=1".parse().unwrap();
        assert_eq!(
            (g.get("A"), g.get("B"), g.get("C"), g.get("D")),
            (Some(true), Some(false), Some(true), None)
        );
        assert!("A".parse::<FeatureGates>().is_err());
        assert!("A=yes".parse::<FeatureGates>().is_err());
        let mut g: FeatureGates = "A=true".parse().unwrap();
        g.extend(&"A=false".parse().unwrap());
        assert_eq!(g.get("A"), Some(false));
    }

    fn kubelet(minor: u32, gates: &str) -> (Kubelet, Vec<String>) {
        Kubelet::new(KubeletVersion(minor), &gates.parse().unwrap())
    }

    #[test]
    fn gate_defaults_follow_the_release_timeline() {
        assert!(!kubelet(23, "").0.providers_gate);
        assert!(
            kubelet(23, "KubeletCredentialProviders=true")
                .0
                .providers_gate
        );
        assert!(kubelet(24, "").0.providers_gate);
        assert!(
            !kubelet(24, "KubeletCredentialProviders=false")
                .0
                .providers_gate
        );
        assert!(
            kubelet(26, "KubeletCredentialProviders=false")
                .0
                .providers_gate
        );
        assert!(!kubelet(32, "").0.sa_token_gate);
        assert!(!kubelet(33, "").0.sa_token_gate);
        assert!(
            kubelet(33, "KubeletServiceAccountTokenForCredentialProviders=true")
                .0
                .sa_token_gate
        );
        assert!(kubelet(34, "").0.sa_token_gate);
        assert!(
            !kubelet(35, "KubeletServiceAccountTokenForCredentialProviders=false")
                .0
                .sa_token_gate
        );
    }

    #[test]
    fn kubelet_versions_and_feature_gates_that_ignore_the_config_are_warned_about() {
        assert!(kubelet(35, "").1.is_empty());
        assert!(kubelet(22, "").1[0].contains("ignores this config"));
        assert!(kubelet(26, "KubeletCredentialProviders=false").1[0].contains("locked"));
        assert!(kubelet(30, "KubeletCredentialProviders=true").1[0].contains("removed in 1.28"));
        assert!(
            kubelet(32, "KubeletServiceAccountTokenForCredentialProviders=true").1[0]
                .contains("added in 1.33")
        );
    }

    #[test]
    fn versions_by_release() {
        assert_eq!(kubelet(23, "").0.config_versions(), ["v1alpha1"]);
        assert_eq!(kubelet(25, "").0.config_versions(), ["v1alpha1", "v1beta1"]);
        assert_eq!(
            kubelet(26, "").0.config_versions(),
            ["v1alpha1", "v1beta1", "v1"]
        );
        assert_eq!(
            kubelet(35, "").0.provider_api_versions(),
            [
                "credentialprovider.kubelet.k8s.io/v1",
                "credentialprovider.kubelet.k8s.io/v1alpha1",
                "credentialprovider.kubelet.k8s.io/v1beta1"
            ]
        );
        assert_eq!(kubelet(24, "").0.provider_api_versions().len(), 2);
        assert_eq!(Kubelet::release_of("kubelet.config.k8s.io/v1"), "1.26");
        assert!(!kubelet(33, "").0.has_cache_type());
        assert!(kubelet(33, "").0.has_token_attributes());
        assert!(!kubelet(32, "").0.has_token_attributes());
        assert!(kubelet(34, "").0.reads_directories());
    }
}
