//! The parse for one image (`Keep::Image`) against the parse of everything: the same plan,
//! credentials, scope, warnings and `explain`, on hand-made and generated hostile configs.

use super::*;

/// A parse for one image keeps what can serve it and answers exactly as a full parse does:
/// same keys in the same order, same credentials, same Docker Hub fallback, same scope.
#[test]
fn a_parse_for_one_image_answers_as_the_full_parse_does() {
    let configs = [
        r#"{"auths":{"reg.io/team":{"auth":"dTpw"},"reg.io":{"username":"a"},"other.io":{"auth":"dTpw"},
            "*.reg.io":{"username":"glob"},"reg.io:5000":{"username":"port"},"https://reg.io/v2/":{"username":"v2"},
            "https://index.docker.io/v1/":{"username":"hub"},"index.docker.io/library":{"username":"lib"},
            "docker.io":{"username":"dio"},"reg.io:bad":{},"http://[::1":{},"reg.io":{"username":"b"}}}"#,
        r#"{"auths":{"reg.io":{"username":"first"}},"auths":{"reg.io":{"username":"second"},"sub.reg.io":{}}}"#,
        r#"{"auths":{"reg.io":{"username":"gone"}},"auths":null,"auths":{"x.reg.io":{}}}"#,
        // The Docker Hub fallback: nothing matches docker.io directly.
        r#"{"auths":{"https://index.docker.io/v1/":{"username":"hub"},"index.docker.io/x":{}}}"#,
    ];
    let images = [
        "reg.io/team/app",
        "reg.io/other",
        "reg.io:5000/a",
        "sub.reg.io/a",
        "x.reg.io/a",
        "nginx",
        "docker.io/library/busybox",
        "index.docker.io/user/app",
        "other.io/x",
        "quay.io/x",
    ];
    let shown = |m: &Matched| {
        let users: Vec<_> = m.keys.iter().map(|k| m.auth[k].username.clone()).collect();
        // Not `invalid`: only the first few invalid keys are kept, for the warnings.
        format!(
            "{:?} {users:?} {:?} {}",
            m.keys,
            m.kind,
            m.cache_key_type.as_str()
        )
    };
    // Entries for other registries first, valid and not, so that those the parse keeps for
    // `explain` are used up before the keys under test.
    let padding: String = (0..40)
        .map(|i| format!(r#""pad{i}.example":{{}},"pad{i}:port":{{}},"#))
        .collect();
    for cfg in configs {
        let cfg = cfg.replacen(r#"{"auths":{"#, &format!(r#"{{"auths":{{{padding}"#), 1);
        let all = ConfigJson::parse(cfg.as_bytes()).unwrap();
        for image in images {
            let q = query(image);
            let kept = ConfigJson::parse_for(cfg.as_bytes(), Keep::Image(&q)).unwrap();
            assert_eq!(
                shown(&match_entries(&kept.entries, &q)),
                shown(&match_entries(&all.entries, &q)),
                "{image} in {cfg}"
            );
            assert_eq!(
                kept.entries.len() + kept.dropped,
                all.entries.len() + all.dropped,
                "{image} in {cfg}"
            );
        }
    }
}

/// Of the entries for other registries, a parse for one image keeps the first
/// [`parse::MAX_OTHERS_KEPT`] valid and invalid keys (for `explain` and the warnings), and
/// counts the rest; a bad entry among them still fails the file.
#[test]
fn a_parse_for_one_image_keeps_few_entries_of_other_registries() {
    let mut cfg = String::from(r#"{"auths":{"reg.io":{"username":"u"}"#);
    for i in 0..1000 {
        cfg.push_str(&format!(r#","r{i}.example":{{}},"bad{i}:port":{{}}"#));
    }
    let q = query("reg.io/app");
    let dockercfg = format!("{}}}", &cfg[r#"{"auths":"#.len()..]);
    cfg.push_str("}}");
    let kept = ConfigJson::parse_for(cfg.as_bytes(), Keep::Image(&q)).unwrap();
    let (entries, dropped) = parse_dockercfg_for(dockercfg.as_bytes(), Keep::Image(&q)).unwrap();
    for (entries, dropped) in [(&kept.entries, kept.dropped), (&entries, dropped)] {
        assert_eq!(entries.len(), 1 + 2 * parse::MAX_OTHERS_KEPT);
        assert_eq!(dropped, 2000 - 2 * parse::MAX_OTHERS_KEPT);
        assert_eq!(entries[0].0, "reg.io");
        assert_eq!(entries[1].0, "r0.example");
        assert_eq!(entries[2].0, "bad0:port");
    }
    let bad = cfg.replace(r#""r999.example":{}"#, r#""r999.example":{"auth":"!"}"#);
    assert!(ConfigJson::parse_for(bad.as_bytes(), Keep::Image(&q)).is_err());
}

/// A tiny deterministic generator (xorshift64*), so that a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// A key as a hostile user writes them: schemes, wildcards, ports, Docker Hub's forms, paths,
/// queries, fragments, case, IPv6, invalid forms, and very long ones.
fn generated_key(rng: &mut Rng) -> String {
    const SCHEMES: &[&str] = &["", "", "", "https://", "http://", "HTTPS://", "oci://"];
    const HOSTS: &[&str] = &[
        "reg.io",
        "*.reg.io",
        "sub.reg.io",
        "*.io",
        "r*.io",
        "reg.io:5000",
        "reg.io:",
        "*.reg.io:5000",
        "index.docker.io",
        "docker.io",
        "*.docker.io",
        "registry-1.docker.io",
        "Reg.io",
        "reg.io.",
        "[::1]:5000",
        "localhost:5000",
        "*",
        "*.*",
        "reg.io:bad",
        "[::1",
        "user:pw@reg.io",
    ];
    const PATHS: &[&str] = &[
        "",
        "",
        "/",
        "/v1/",
        "/v2/",
        "/v1",
        "/team",
        "/team/app",
        "/v2/team",
        "/tea",
        "?x=1",
        "#frag",
        "/%74eam",
        "/library",
    ];
    match rng.below(40) {
        0 => format!("reg.io/{}", "a".repeat(5000)),
        1 => format!("{}.reg.io", "a".repeat(300)),
        2 => "https://index.docker.io/v1/".into(),
        _ => format!(
            "{}{}{}",
            rng.pick(SCHEMES),
            rng.pick(HOSTS),
            rng.pick(PATHS)
        ),
    }
}

/// One generated `config.json`: `auths` (maybe repeated, maybe cleared by `null`) with keys
/// under test among many of other registries, `credHelpers` (maybe repeated, with wrong
/// types), maybe a `credsStore`.
fn generated_config(rng: &mut Rng) -> String {
    let mut members = Vec::new();
    for _ in 0..1 + rng.below(3) {
        if rng.chance(10) {
            members.push(r#""auths":null"#.to_string());
            continue;
        }
        let mut entries = Vec::new();
        for i in 0..rng.below(90) {
            entries.push(match rng.below(3) {
                0 => format!(r#""pad{i}.example":{{"username":"pad"}}"#),
                1 => format!(r#""pad{i}:port":{{}}"#),
                _ => format!(r#""{}":{{}}"#, generated_key(rng)),
            });
        }
        for _ in 0..rng.below(8) {
            let user = rng.below(1000);
            let entry = if rng.chance(20) {
                "{}".to_string()
            } else {
                format!(r#"{{"username":"u{user}","password":"p{user}"}}"#)
            };
            let at = rng.below(entries.len() + 1);
            entries.insert(at, format!("{:?}:{entry}", generated_key(rng)));
        }
        members.push(format!(r#""auths":{{{}}}"#, entries.join(",")));
    }
    for _ in 0..rng.below(3) {
        if rng.chance(10) {
            members.push(r#""credHelpers":null"#.to_string());
            continue;
        }
        let mut entries: Vec<String> = (0..rng.below(50))
            .map(|i| format!(r#""pad{i}.example":"h""#))
            .collect();
        for _ in 0..rng.below(5) {
            let value = rng.pick(&[r#""""#, r#""h1""#, r#""h2""#, "null", "1", "1e400", "{}"]);
            let at = rng.below(entries.len() + 1);
            entries.insert(at, format!("{:?}:{value}", generated_key(rng)));
        }
        members.push(format!(r#""credHelpers":{{{}}}"#, entries.join(",")));
    }
    if rng.chance(30) {
        members.push(r#""credsStore":"store""#.to_string());
    }
    let at = rng.below(members.len() + 1);
    members.insert(at, r#""HttpHeaders":{"X":"y"}"#.to_string());
    format!("{{{}}}", members.join(","))
}

/// What a plan answers with, credentials included, for comparing two plans.
fn shown_plan(plan: &Plan<'_>) -> String {
    let shown = |m: &Matched| {
        let creds: Vec<_> = m
            .keys
            .iter()
            .map(|k| (k, &m.auth[k].username, m.auth[k].password.expose()))
            .collect();
        format!("{creds:?} {:?} {}", m.kind, m.cache_key_type.as_str())
    };
    match plan {
        Plan::CredHelper(name) => format!("credHelpers {name:?}"),
        Plan::Auths(m) => format!("auths {}", shown(m)),
        Plan::CredsStore(name, m) => format!("credsStore {name:?} {}", shown(m)),
    }
}

/// The differential: for generated hostile configs and images, the backend's parse for the
/// image ([`Keep::Image`]) plans the same answer, with the same credentials and scope, and
/// explains it the same way, as the parse that keeps everything ([`Keep::All`]).
#[test]
fn a_parse_for_one_image_plans_and_explains_as_keeping_everything_does() {
    let images = [
        "reg.io/team/app",
        "reg.io/other",
        "reg.io:5000/team/x",
        "sub.reg.io/a",
        "a.sub.reg.io/b",
        "nginx",
        "docker.io/library/busybox",
        "index.docker.io/u/app",
        "registry-1.docker.io/x/y",
        "localhost:5000/x",
        "[::1]:5000/x",
        "quay.io/x",
    ]
    .map(query);
    let t = tree();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let cfg = generated_config(&mut rng);
        write(&t.root, "config.json", &cfg);
        let (all, _) = search(&t.paths, Keep::All);
        let all = all.expect("the generated config parses");
        let all_warnings = ConfigJson::parse(cfg.as_bytes()).unwrap().warnings;
        for q in &images {
            let (kept, _) = search(&t.paths, Keep::Image(q));
            let kept = kept.expect("the generated config parses");
            let image = q.image.as_str();
            assert_eq!(
                shown_plan(&plan(&kept, q)),
                shown_plan(&plan(&all, q)),
                "case {case}, {image} in {cfg}"
            );
            let parsed = ConfigJson::parse_for(cfg.as_bytes(), Keep::Image(q)).unwrap();
            assert_eq!(
                parsed.warnings, all_warnings,
                "case {case}, {image} in {cfg}"
            );
            let explained = |keep| {
                let e = explain::explain_with(&t.paths, q, keep);
                let mut lines = vec![format!("{:?} {}", e.applies, e.summary)];
                lines.extend(e.details);
                lines
            };
            let (kept, all) = (explained(Keep::Image(q)), explained(Keep::All));
            for (i, (k, a)) in kept.iter().zip(&all).enumerate() {
                assert_eq!(k, a, "line {i}: case {case}, {image} in {cfg}");
            }
            assert_eq!(kept.len(), all.len(), "case {case}, {image} in {cfg}");
        }
    }
}
