//! Drop-in, the docker config flows: under auth-provider-gcp's names with
//! `--authFlow=dockercfg|dockercfg-url` the binary answers as upstream does
//! (`pkg/gcpcredential` `DockerConfigKeyProvider` / `DockerConfigURLKeyProvider`, and
//! `cmd/auth-provider-gcp/provider` `GetResponse` for the cache fields), or keeps a documented
//! difference, pinned here.

use super::*;

/// A metadata server with the `google-dockercfg` attribute, the `google-dockercfg-url`
/// attribute (pointing at `url`, when given) and a token, each only as `serve` lists them.
fn dockercfg_metadata(attribute: Option<String>, url: Option<String>) -> Fake {
    google::fake(move |r| {
        if r.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return json(403, "");
        }
        match (r.path.as_str(), &attribute, &url) {
            (DOCKERCFG_PATH, Some(body), _) => json(200, body),
            (DOCKERCFG_URL_PATH, _, Some(u)) => json(200, u),
            (TOKEN_PATH, _, _) => json(200, r#"{"access_token":"ya29.t","expires_in":3599}"#),
            _ => json(404, ""),
        }
    })
}

/// Point 9: `--authFlow=dockercfg` reads the `google-dockercfg` attribute and nothing else,
/// `dockercfg-url` the document `google-dockercfg-url` names and nothing else; either
/// answers every entry of it for any image (the kubelet matches), never a token, even for a
/// Google registry no entry names; an attribute that is not set is an empty answer.
#[test]
fn upstream_dockercfg_flows_read_one_attribute_and_answer_the_whole_document_never_a_token() {
    let s = Sandbox::new();
    let doc = serde_json::json!({
        "registry.example.com": {"auth": b64("robot:s3cret-robot")},
        "gcr.io/team": {"username": "_json_key", "password": "json-key-password"},
    })
    .to_string();
    let store = {
        let doc = doc.clone();
        google::fake(move |r| match r.path.as_str() {
            "/cfg.json" => json(200, &doc),
            _ => json(404, ""),
        })
    };
    let both = dockercfg_metadata(Some(doc.clone()), Some(store.url("/cfg.json")));
    let host = both.host();
    let env = [("GCE_METADATA_HOST", host.as_str())];
    for (flow, asked) in [
        ("dockercfg", DOCKERCFG_PATH),
        ("dockercfg-url", DOCKERCFG_URL_PATH),
    ] {
        for image in ["quay.io/org/img", "us-docker.pkg.dev/p/r/i"] {
            let before = both.requests().len();
            let out = as_upstream(
                &s,
                &["get-credentials", "--authFlow", flow],
                &env,
                &request(V1, image),
            );
            let resp = stdout_json(&out);
            assert_eq!(
                auth_keys(&resp),
                ["gcr.io/team", "registry.example.com"],
                "{flow} {image}: {resp}"
            );
            assert_eq!(
                creds(&resp, "registry.example.com"),
                ("robot".into(), "s3cret-robot".into())
            );
            assert_eq!(resp["cacheKeyType"], "Image", "{flow}");
            let paths: Vec<String> = both.requests()[before..]
                .iter()
                .map(|r| r.path.clone())
                .collect();
            assert_eq!(paths, [asked], "{flow} {image}");
        }
    }
    // Not set: an empty answer (exit 0), and still no token for a Google registry.
    let bare = dockercfg_metadata(None, None);
    let bare_host = bare.host();
    for flow in ["dockercfg", "dockercfg-url"] {
        let out = as_upstream(
            &s,
            &["get-credentials", "-a", flow],
            &[("GCE_METADATA_HOST", bare_host.as_str())],
            &request(V1, "gcr.io/p/i"),
        );
        assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}), "{flow}");
    }
    assert!(
        bare.requests().iter().all(|r| r.path != TOKEN_PATH),
        "{:?}",
        bare.requests()
    );
    // Our own name, same flag: the matching entry only, and the token where none matches.
    let (out, _) = get(
        &s,
        "us-docker.pkg.dev/p/r/i",
        &env,
        &["get-credentials", "--authFlow=dockercfg"],
    );
    assert_eq!(auth_keys(&stdout_json(&out)), ["us-docker.pkg.dev"]);
}

/// Point 8, the other flows: `KUBE_SIDECAR_CACHE_DURATION` and `KUBE_SIDECAR_CACHE_TYPE`
/// apply to the docker config answers as to the token (upstream's `GetResponse` applies both
/// to every flow).
#[test]
fn upstream_the_sidecar_variables_apply_to_the_docker_config_flows_too() {
    let s = Sandbox::new();
    let doc = serde_json::json!({"registry.example.com": {"auth": b64("u:p")}}).to_string();
    let md = dockercfg_metadata(Some(doc), None);
    let host = md.host();
    let out = as_upstream(
        &s,
        &["get-credentials", "--authFlow=dockercfg"],
        &[
            ("GCE_METADATA_HOST", host.as_str()),
            ("KUBE_SIDECAR_CACHE_DURATION", "1m"),
            ("KUBE_SIDECAR_CACHE_TYPE", "global"),
        ],
        &request(V1, "registry.example.com/app"),
    );
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheKeyType"], "Global");
    // One minute, less at most 10% of the cache's refresh jitter.
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!((54..=60).contains(&secs), "{resp}");
    // The token flow: capped the same way.
    let out = as_upstream(
        &s,
        &["get-credentials"],
        &[
            ("GCE_METADATA_HOST", host.as_str()),
            ("KUBE_SIDECAR_CACHE_DURATION", "1m"),
        ],
        &request(V1, "gcr.io/p/i"),
    );
    let secs = go_secs(
        stdout_json(&out)["cacheDuration"]
            .as_str()
            .unwrap_or_default(),
    );
    assert!((54..=60).contains(&secs), "{secs}");
}

/// The paths `fake` was asked, from request `from` on.
fn paths_since(fake: &Fake, from: usize) -> Vec<String> {
    fake.requests()[from..]
        .iter()
        .map(|r| r.path.clone())
        .collect()
}

/// Gap G1: under `--authFlow=dockercfg|dockercfg-url` an attribute that is not set is
/// upstream's empty answer, whose fields `GetResponse` fills as for every answer:
/// `cacheKeyType` by `getCacheKeyType` (`Image` unless `KUBE_SIDECAR_CACHE_TYPE` says
/// otherwise), `cacheDuration` by `getCacheDuration` (`0s` unless
/// `KUBE_SIDECAR_CACHE_DURATION` says otherwise). `0s` is for this pull only: the disk cache
/// keeps nothing either, so the next pull asks the metadata server again.
#[test]
fn upstream_an_unset_dockercfg_attribute_answers_empty_as_upstream_with_the_sidecar_variables() {
    let bare = dockercfg_metadata(None, None);
    let host = bare.host();
    for (flow, asked) in [
        ("dockercfg", DOCKERCFG_PATH),
        ("dockercfg-url", DOCKERCFG_URL_PATH),
    ] {
        let s = Sandbox::new();
        let run = |vars: &[(&str, &str)]| {
            let mut env = vec![
                ("GCE_METADATA_HOST", host.as_str()),
                ("KUBELET_KEYRING_NO_CACHE", "0"),
            ];
            env.extend_from_slice(vars);
            let before = bare.requests().len();
            let out = as_upstream(
                &s,
                &["get-credentials", "--authFlow", flow],
                &env,
                &request(V1, "gcr.io/p/i"),
            );
            (stdout_json(&out), paths_since(&bare, before))
        };
        // Unset: Image, 0s, and not stored: the second pull asks again.
        for _ in 0..2 {
            let (resp, paths) = run(&[]);
            assert_eq!(resp["auth"], serde_json::json!({}), "{flow}: {resp}");
            assert_eq!(resp["cacheKeyType"], "Image", "{flow}: {resp}");
            assert_eq!(resp["cacheDuration"], "0s", "{flow}: {resp}");
            assert_eq!(paths, [asked], "{flow}: never a token, never cached");
        }
        // Each variable alone changes its own field.
        let (resp, _) = run(&[("KUBE_SIDECAR_CACHE_TYPE", "registry")]);
        assert_eq!(
            (&resp["cacheKeyType"], &resp["cacheDuration"]),
            (&"Registry".into(), &"0s".into()),
            "{flow}: {resp}"
        );
        let (resp, _) = run(&[("KUBE_SIDECAR_CACHE_DURATION", "10m")]);
        assert_eq!(resp["cacheKeyType"], "Image", "{flow}: {resp}");
        // Ten minutes, less at most 10% of the cache's refresh jitter.
        let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
        assert!((540..=600).contains(&secs), "{flow}: {resp}");
        // Both: a global "no credentials" for a minute, as upstream answers it.
        let (resp, _) = run(&[
            ("KUBE_SIDECAR_CACHE_DURATION", "1m"),
            ("KUBE_SIDECAR_CACHE_TYPE", "global"),
        ]);
        assert_eq!(resp["auth"], serde_json::json!({}), "{flow}: {resp}");
        assert_eq!(resp["cacheKeyType"], "Global", "{flow}: {resp}");
        let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
        assert!((54..=60).contains(&secs), "{flow}: {resp}");
    }
}

/// Gap G1, the kept difference: a document of `--authFlow=dockercfg|dockercfg-url` answers
/// for five minutes (docker-config's lifetime: static credentials, re-read as often as a
/// file on disk), where upstream's `getCacheDuration` sends `0s`; the disk cache keeps it as
/// long, so the next pull asks neither the metadata server nor the URL.
/// `KUBE_SIDECAR_CACHE_DURATION=0s` gives upstream's `0s`, and nothing is stored.
#[test]
fn upstream_a_dockercfg_document_lives_five_minutes_where_upstream_sends_0s_unless_told_0s() {
    let doc = serde_json::json!({"registry.example.com": {"auth": b64("u:p")}}).to_string();
    let store = {
        let doc = doc.clone();
        google::fake(move |r| match r.path.as_str() {
            "/cfg.json" => json(200, &doc),
            _ => json(404, ""),
        })
    };
    let md = dockercfg_metadata(Some(doc), Some(store.url("/cfg.json")));
    let host = md.host();
    for (flow, asked) in [
        ("dockercfg", DOCKERCFG_PATH),
        ("dockercfg-url", DOCKERCFG_URL_PATH),
    ] {
        for (duration, stored) in [(None, true), (Some("0s"), false)] {
            let s = Sandbox::new();
            let mut env = vec![
                ("GCE_METADATA_HOST", host.as_str()),
                ("KUBELET_KEYRING_NO_CACHE", "0"),
            ];
            env.extend(duration.map(|d| ("KUBE_SIDECAR_CACHE_DURATION", d)));
            for pull in 0..2 {
                let (before, fetched) = (md.requests().len(), store.requests().len());
                let out = as_upstream(
                    &s,
                    &["get-credentials", "--authFlow", flow],
                    &env,
                    &request(V1, "registry.example.com/app"),
                );
                let resp = stdout_json(&out);
                assert_eq!(
                    creds(&resp, "registry.example.com"),
                    ("u".into(), "p".into()),
                    "{flow} {duration:?}: {resp}"
                );
                assert_eq!(resp["cacheKeyType"], "Image", "{flow}: {resp}");
                let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
                match duration {
                    // Five minutes, less at most 10% of refresh jitter (the second pull: what
                    // the entry has left, a little less).
                    None => assert!((265..=300).contains(&secs), "{flow}: {resp}"),
                    Some(_) => assert_eq!(resp["cacheDuration"], "0s", "{flow}: {resp}"),
                }
                let paths = paths_since(&md, before);
                let from_url = store.requests().len() - fetched;
                if pull == 1 && stored {
                    assert!(paths.is_empty(), "{flow}: the second pull is the cache's");
                    assert_eq!(from_url, 0, "{flow}");
                } else {
                    assert_eq!(paths, [asked], "{flow} {duration:?} pull {pull}");
                    assert_eq!(from_url, usize::from(flow == "dockercfg-url"), "{flow}");
                }
            }
        }
    }
}

/// Gap G3, a kept difference: upstream's Go client follows up to 10 redirects of the URL
/// `google-dockercfg-url` names; here none is, since the body is a set of credentials and a
/// redirect would let another server choose them. Exit 1 with one line that says so, and
/// the redirect's target is never asked.
#[test]
fn upstream_a_google_dockercfg_url_redirect_is_not_followed() {
    let target = google::fake(|_| json(200, r#"{"registry.example.com":{"auth":"dTpw"}}"#));
    let location = target.url("/cfg.json");
    // `/moved/<status>` answers that redirect status to the target.
    let store = google::fake(move |r| {
        let status = r.path.trim_start_matches("/moved/").parse().unwrap_or(404);
        Reply::WithHeaders(
            status,
            vec![("Location".into(), location.clone())],
            Vec::new(),
        )
    });
    let s = Sandbox::new();
    for status in [301, 302, 307, 308] {
        let md = dockercfg_metadata(None, Some(store.url(&format!("/moved/{status}"))));
        let host = md.host();
        let out = as_upstream(
            &s,
            &["get-credentials", "--authFlow=dockercfg-url"],
            &[("GCE_METADATA_HOST", host.as_str())],
            &request(V1, "registry.example.com/app"),
        );
        let line = assert_one_line_failure(&out, &[]);
        assert!(
            line.contains(&format!("answered {status}"))
                && line.contains("redirects are not followed"),
            "{line}"
        );
    }
    assert_eq!(store.requests().len(), 4);
    assert!(target.requests().is_empty(), "{:?}", target.requests());
}
