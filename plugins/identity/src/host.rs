//! Which images are mine: the rules' host patterns, matched as the kubelet matches
//! `matchImages` ([`keyring_api::pattern`]); no I/O.
//!
//! Rules are tried in their order and the **first** rule with a matching pattern answers,
//! whatever later rules say (a narrow rule goes before a wide one: `harbor.example.com/team`
//! before `harbor.example.com`). An image whose host a rule names only under other paths is
//! "not mine at this path" ([`keyring_api::Outcome::NOT_MINE_AT_THIS_PATH`]), so that refusal
//! is never cached for the whole registry. [`select`] is the one matching function: the
//! backend and `explain` both ask it (`validate-config` matches no image: it checks each
//! rule against the kubelet entries that admit its hosts, [`crate::config`]).

use keyring_api::pattern::Target;
use keyring_api::CacheKeyType;

use crate::config::Rule;

/// What the rules say about an image.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Rule `index` answers, through its pattern `pattern`.
    Rule {
        /// The rule's position in `identity.rules`.
        index: usize,
        /// The rule.
        rule: &'a Rule,
        /// Its first pattern that matched.
        pattern: &'a str,
    },
    /// No rule matches, but one names the image's host under other paths.
    OtherPath,
    /// No rule names the image's host.
    None,
}

/// The first rule matching `target` (see the module docs).
pub fn select<'a>(rules: &'a [Rule], target: &Target) -> Selection<'a> {
    for (index, rule) in rules.iter().enumerate() {
        if let Some(pattern) = rule.hosts.iter().find(|h| target.matched_by(h)) {
            return Selection::Rule {
                index,
                rule,
                pattern,
            };
        }
    }
    if rules
        .iter()
        .flat_map(|r| &r.hosts)
        .any(|h| target.host_matched_by(h.as_bytes()))
    {
        Selection::OtherPath
    } else {
        Selection::None
    }
}

/// The scope and key of an answer for `target` (whose registry is `registry`): the registry
/// when no rule pattern for its host has a path, else the image alone, so that the kubelet
/// and our cache never reuse one path's answer for another path that another rule (or none)
/// serves.
pub fn scope(rules: &[Rule], target: &Target, registry: &str) -> (CacheKeyType, String) {
    let path_scoped = rules
        .iter()
        .flat_map(|r| &r.hosts)
        .any(|h| h.contains('/') && target.host_matched_by(h.as_bytes()));
    if path_scoped {
        (CacheKeyType::Image, target.as_str().to_string())
    } else {
        (CacheKeyType::Registry, registry.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        let c: crate::config::Config = serde_json::from_str(yaml).unwrap();
        c.rules
    }

    #[test]
    fn the_first_matching_rule_wins_and_other_paths_are_not_mine_at_this_path() {
        let r = rules(
            r#"{"rules":[
              {"hosts":["harbor.example.com/team"],"identity":"node","node":{"tokenFile":"/t"},"method":{"passThrough":{}}},
              {"hosts":["*.example.com","harbor.example.com"],"identity":"node","node":{"tokenFile":"/t"},"method":{"passThrough":{"username":"x"}}},
              {"hosts":["only.example.org/app"],"identity":"node","node":{"tokenFile":"/t"},"method":{"passThrough":{}}}
            ]}"#,
        );
        let pick = |image: &str| match select(&r, &Target::new(image)) {
            Selection::Rule { index, pattern, .. } => format!("{index} {pattern}"),
            other => format!("{other:?}"),
        };
        assert_eq!(
            pick("harbor.example.com/team/app"),
            "0 harbor.example.com/team"
        );
        assert_eq!(pick("harbor.example.com/other/app"), "1 *.example.com");
        assert_eq!(pick("a.b.example.com/x"), "None");
        assert_eq!(pick("only.example.org/other"), "OtherPath");
        assert_eq!(pick("harbor.example.com:5000/team/app"), "None");

        let t = Target::new("harbor.example.com/other/app");
        assert_eq!(
            scope(&r, &t, "harbor.example.com"),
            (CacheKeyType::Image, "harbor.example.com/other/app".into())
        );
        let t = Target::new("x.example.com/app");
        assert_eq!(
            scope(&r, &t, "x.example.com"),
            (CacheKeyType::Registry, "x.example.com".into())
        );
    }
}
