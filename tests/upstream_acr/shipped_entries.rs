//! The answers to every shipped entry's patterns with the node's identity, a
//! `--registry-mirror` with a port, and upstream's anonymous `*.azurecr.*` entry in every
//! answer.

use super::*;

/// Every pattern of every shipped entry, pulled by a node without a service-account token
/// (nodes' own and static pods' images): the kubelet identity of azure.json via IMDS, the
/// ACR refresh token under the image's registry (and the ACR's, for a mirror).
#[test]
fn every_shipped_entry_answers_every_pattern_with_the_node_identity() {
    let mut checked = 0;
    for entry in acr_entries() {
        let mirrors = mirrors(&entry);
        for pattern in &entry.provider.match_images {
            let label = format!("{} {pattern}", entry.label());
            let image = image_for(pattern);
            let registry = image.split('/').next().unwrap().to_string();
            let (login, expect_keys) = match mirrors.iter().find(|(s, _)| *s == registry) {
                Some((_, acr)) => (acr.clone(), vec![registry.clone(), acr.clone()]),
                None => (registry.clone(), vec![registry.clone()]),
            };
            if pattern.starts_with("*.custom.") {
                continue; // a custom cloud's suffix: custom_cloud_takes_its_suffix_from_the_environment_file
            }
            let (node, refresh) = Node::aks(&entry, &login);
            let out = node.run(&entry, &entry.request(&image), &[]);
            let a = auth(&entry, &out);
            let mut want: BTreeMap<String, AuthConfig> = expect_keys
                .iter()
                .map(|k| (k.clone(), creds(&refresh)))
                .collect();
            want.extend(acr_answer([]));
            assert_eq!(a, want, "{label}: {}", crate::common::stderr(&out));
            let imds = imds_calls(&node.fake);
            assert_eq!(imds.len(), 1, "{label}");
            assert_eq!(imds[0].query["client_id"], AKS_KUBELET_IDENTITY, "{label}");
            assert_eq!(
                imds[0].query["resource"],
                "https://containerregistry.azure.net"
            );
            assert_exchanged(&node.fake, &login, "imds", &label);
            // The tenant of the exchange is azure.json's, as upstream's.
            assert_eq!(
                node.fake.one("POST", "/oauth2/exchange").form["tenant"],
                AKS_TENANT
            );
            let err = crate::common::stderr(&out);
            assert!(
                !err.contains(&refresh) && !err.contains(&aad_token("imds")[..40]),
                "{err}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked} entry × pattern cases");
}

/// `--registry-mirror` with a port, which upstream cannot parse: `mirror.local:5000`'s
/// images get the ACR's credentials under `mirror.local:5000` (the key the kubelet
/// matches). A malformed value exits 2 naming the flag.
#[test]
fn registry_mirror_with_a_port() {
    let mut entry = entry("aks-agentbaker-network-isolated.yaml");
    entry.provider.match_images.push("mirror.local:5000".into());
    entry.provider.args[1] =
        "--registry-mirror=mcr.microsoft.com:test.azurecr.io,mirror.local:5000:other.azurecr.io"
            .into();
    let (node, refresh) = Node::aks(&entry, "other.azurecr.io");
    let out = node.run(&entry, &entry.request("mirror.local:5000/team/app:1"), &[]);
    let a = auth(&entry, &out);
    assert_eq!(
        a,
        acr_answer([
            ("mirror.local:5000".to_string(), creds(&refresh)),
            ("other.azurecr.io".to_string(), creds(&refresh)),
        ])
    );
    assert_exchanged(&node.fake, "other.azurecr.io", "imds", "port mirror");
    entry.provider.args[1] = "--registry-mirror=mirror.local:5000".into();
    let out = node.run(&entry, &entry.request("mirror.local:5000/team/app:1"), &[]);
    let err = crate::common::assert_one_line_exit(&out, 2, &[]);
    assert!(err.contains("--registry-mirror"), "{err}");
}

/// Issue 22 point 15: every ACR answer carries upstream's anonymous entry
/// `"*.azurecr.*": {"", ""}` (kubernetes PR 74715). The kubelet tries the refresh token
/// first and the empty credential (an anonymous pull) after it, so a registry that allows
/// anonymous pulls keeps working for a node whose identity lacks AcrPull. The pattern
/// matches three-label hosts only, as upstream's: a geo-replica host gets the token alone.
#[test]
fn an_acr_answer_carries_upstreams_anonymous_entry_tried_after_the_token() {
    let entry = entry("aks-agentbaker.yaml");
    for (host, tries) in [("myacr.azurecr.io", 2), ("myacr.eastus.geo.azurecr.io", 1)] {
        let (node, refresh) = Node::aks(&entry, host);
        let answer = node
            .sb
            .kubelet_pull(&entry, &node.env_pairs(), &format!("{host}/team/app:1"))
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let t = &answer.tries;
        assert_eq!(t.len(), tries, "{host}: {:?}", answer.lines);
        assert_eq!(
            (t[0].0.as_str(), &t[0].1),
            (host, &creds(&refresh)),
            "{host}"
        );
        if tries == 2 {
            assert_eq!(t[1].0, ANONYMOUS);
            assert_eq!(
                (t[1].1.username.as_str(), t[1].1.password.as_str()),
                ("", "")
            );
        }
    }
}
