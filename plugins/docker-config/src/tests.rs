use std::path::{Path, PathBuf};

use keyring_api::pattern::Keyring;
use keyring_api::ImageName;

use super::*;

fn query(image: &str) -> Query {
    Query::new(ImageName::parse(image).unwrap())
}

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

struct Tree {
    _tmp: tempfile::TempDir,
    paths: SearchPaths,
    root: PathBuf,
    cwd: PathBuf,
    home: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cwd, home) = (
        tmp.path().join("root"),
        tmp.path().join("cwd"),
        tmp.path().join("home"),
    );
    for d in [&root, &cwd, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    let paths = SearchPaths {
        root_dir: root.clone(),
        cwd: Some(cwd.clone()),
        home: Some(home.clone()),
    };
    Tree {
        _tmp: tmp,
        paths,
        root,
        cwd,
        home,
    }
}

fn used(t: &Tree) -> Option<PathBuf> {
    search(&t.paths, Keep::All).0.map(|l| l.path)
}

#[test]
fn candidate_order_is_the_kubelets() {
    let p = SearchPaths {
        root_dir: "/var/lib/kubelet".into(),
        cwd: Some("/work".into()),
        home: Some("/home/u".into()),
    };
    let got: Vec<String> = p
        .candidates()
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "/var/lib/kubelet/config.json",
            "/work/config.json",
            "/home/u/.docker/config.json",
            "/.docker/config.json",
            "/var/lib/kubelet/.dockercfg",
            "/work/.dockercfg",
            "/home/u/.dockercfg",
            "/.dockercfg",
        ]
    );
    // No HOME: relative to the working directory, as Go's "" home does.
    let p = SearchPaths { home: None, ..p };
    assert_eq!(
        p.candidates()[2].0,
        PathBuf::from("/work/.docker/config.json")
    );
    assert_eq!(p.candidates()[6].0, PathBuf::from("/work/.dockercfg"));
}

#[test]
fn first_parsable_file_wins_and_broken_files_are_skipped() {
    let t = tree();
    let good = r#"{"auths":{"reg.io":{"auth":"Zm9vOmJhcg=="}}}"#;
    write(&t.home, ".docker/config.json", good);
    write(
        &t.home,
        ".dockercfg",
        r#"{"reg.io":{"auth":"Zm9vOmJhcg=="}}"#,
    );
    assert_eq!(used(&t), Some(t.home.join(".docker/config.json")));
    write(&t.cwd, "config.json", good);
    assert_eq!(used(&t), Some(t.cwd.join("config.json")));
    write(&t.root, "config.json", "{ broken");
    assert_eq!(used(&t), Some(t.cwd.join("config.json")));
    let (_, visits) = search(&t.paths, Keep::All);
    assert!(matches!(&visits[0], Visit::Skipped(p, _) if *p == t.root.join("config.json")));
    write(&t.root, "config.json", good);
    assert_eq!(used(&t), Some(t.root.join("config.json")));
}

#[test]
fn dockercfg_only_when_no_config_json_parses() {
    let t = tree();
    write(
        &t.home,
        ".dockercfg",
        r#"{"reg.io":{"auth":"Zm9vOmJhcg=="}}"#,
    );
    write(&t.root, ".dockercfg", "not json");
    write(&t.cwd, "config.json", "[]");
    assert_eq!(used(&t), Some(t.home.join(".dockercfg")));
    // An empty but valid config.json ends the search.
    write(
        &t.home,
        ".docker/config.json",
        r#"{"credsStore":"desktop"}"#,
    );
    assert_eq!(used(&t), Some(t.home.join(".docker/config.json")));
}

#[test]
fn a_directory_in_place_of_a_file_is_skipped() {
    let t = tree();
    std::fs::create_dir_all(t.root.join("config.json")).unwrap();
    write(&t.home, ".docker/config.json", "{}");
    assert_eq!(used(&t), Some(t.home.join(".docker/config.json")));
}

fn answer(entries: &str, image: &str) -> (Vec<String>, CacheKeyType) {
    let e = parse_config_json(entries.as_bytes()).unwrap();
    let m = match_entries(&e, &query(image));
    (m.keys, m.cache_key_type)
}

#[test]
fn only_matching_entries_are_returned() {
    let cfg = r#"{"auths":{
        "127.0.0.1:5000":{"auth":"dTpw"},
        "127.0.0.1:5001":{"auth":"dTpw"},
        "https://index.docker.io/v1/":{"auth":"dTpw"},
        "other.example.com":{"auth":"dTpw"}}}"#;
    assert_eq!(
        answer(cfg, "127.0.0.1:5000/app"),
        (vec!["127.0.0.1:5000".into()], CacheKeyType::Registry)
    );
    assert_eq!(
        answer(cfg, "nginx"),
        (
            vec!["https://index.docker.io/v1/".into()],
            CacheKeyType::Registry
        )
    );
    assert_eq!(answer(cfg, "quay.io/x"), (vec![], CacheKeyType::Registry));
}

#[test]
fn path_scoped_keys_make_the_answer_image_scoped() {
    let cfg = r#"{"auths":{"reg.io/team":{"auth":"dTpw"},"reg.io":{"auth":"dTpw"},"other.io":{"auth":"dTpw"}}}"#;
    assert_eq!(
        answer(cfg, "reg.io/team/app"),
        (
            vec!["reg.io/team".into(), "reg.io".into()],
            CacheKeyType::Image
        )
    );
    // The other repository gets only the registry key, and must not be cached per registry
    // either, or reg.io/team/app would later be served this narrower answer.
    assert_eq!(
        answer(cfg, "reg.io/other"),
        (vec!["reg.io".into()], CacheKeyType::Image)
    );
    assert_eq!(
        answer(cfg, "other.io/x"),
        (vec!["other.io".into()], CacheKeyType::Registry)
    );
    // /v2/ is the registry root, not a path.
    let cfg = r#"{"auths":{"https://reg.io/v2/":{"auth":"dTpw"}}}"#;
    assert_eq!(
        answer(cfg, "reg.io/x"),
        (vec!["https://reg.io/v2/".into()], CacheKeyType::Registry)
    );
}

#[test]
fn provider_answers_with_the_file_and_five_minutes() {
    let t = tree();
    write(
        &t.home,
        ".docker/config.json",
        r#"{"auths":{"reg.io":{"username":"u","password":"p"}}}"#,
    );
    let p = DockerConfigBackend::new(t.paths.clone());
    let Outcome::Answer(a) = p.provide(&query("reg.io/app:1")).unwrap() else {
        panic!("expected an answer");
    };
    assert_eq!(a.lifetime, LIFETIME);
    assert_eq!(
        a.source,
        t.home.join(".docker/config.json").display().to_string()
    );
    assert_eq!(a.auth["reg.io"].username, "u");
    assert_eq!(a.auth["reg.io"].password.expose(), "p");
    let empty = DockerConfigBackend::new(tree().paths);
    assert_eq!(
        empty.provide(&query("reg.io/app")).unwrap(),
        Outcome::NOT_MINE
    );
}

fn loaded(json: &str) -> Loaded {
    let c = ConfigJson::parse(json.as_bytes()).unwrap();
    Loaded {
        path: "/x/config.json".into(),
        format: Format::ConfigJson,
        entries: c.entries,
        dropped: c.dropped,
        cred_helpers: c.cred_helpers,
        creds_store: c.creds_store,
    }
}

/// The plan for an image, as `helper:<name>`, `store:<name>:<scope>` or the auths keys.
fn chosen(json: &str, image: &str) -> String {
    let l = loaded(json);
    match plan(&l, &query(image)) {
        Plan::CredHelper(name) => format!("helper:{name}"),
        Plan::CredsStore(name, m) => format!("store:{name}:{}", m.cache_key_type.as_str()),
        Plan::Auths(m) => format!("auths:{}", m.keys.join(",")),
    }
}

#[test]
fn precedence_is_cred_helpers_then_auths_then_creds_store() {
    let cfg = r#"{
        "auths":{"reg.io":{"auth":"dTpw"},"empty.io":{},"team.io/a":{"auth":"dTpw"}},
        "credHelpers":{"reg.io":"per-host","123456789012.dkr.ecr.us-east-1.amazonaws.com":"ecr-login","localhost:5000":"local","off.io":""},
        "credsStore":"store"}"#;
    // credHelpers wins over a matching auths entry.
    assert_eq!(chosen(cfg, "reg.io/app"), "helper:per-host");
    assert_eq!(
        chosen(cfg, "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"),
        "helper:ecr-login"
    );
    // Exact registry keys, port included: no match by host alone.
    assert_eq!(chosen(cfg, "localhost:5000/a"), "helper:local");
    assert_eq!(chosen(cfg, "localhost:5001/a"), "store:store:Registry");
    assert_eq!(chosen(cfg, "localhost/a"), "store:store:Registry");
    assert_eq!(chosen(cfg, "sub.reg.io/a"), "store:store:Registry");
    // auths with credentials beat credsStore; path-scoped ones keep their scope.
    assert_eq!(chosen(cfg, "team.io/a/x"), "auths:team.io/a");
    assert_eq!(chosen(cfg, "team.io/b"), "store:store:Image");
    // A matched entry without credentials (docker login with a store) does not.
    assert_eq!(chosen(cfg, "empty.io/x"), "store:store:Registry");
    // An empty helper name pins the registry to auths, without credsStore.
    assert_eq!(chosen(cfg, "off.io/x"), "auths:");
    // Without credsStore, the kubelet's behaviour is unchanged.
    let no_store = r#"{"auths":{"empty.io":{}},"credHelpers":{"reg.io":"h"}}"#;
    assert_eq!(chosen(no_store, "empty.io/x"), "auths:empty.io");
    assert_eq!(chosen(no_store, "other.io/x"), "auths:");
    assert_eq!(chosen("{}", "other.io/x"), "auths:");
}

#[test]
fn docker_hub_uses_dockers_server_address() {
    for (key, expect) in [
        ("https://index.docker.io/v1/", "helper:hub"),
        ("index.docker.io", "helper:hub"),
        ("docker.io", "helper:hub"),
        ("https://index.docker.io", "auths:"),
        ("registry-1.docker.io", "auths:"),
    ] {
        let cfg = format!(r#"{{"credHelpers":{{"{key}":"hub"}}}}"#);
        for image in [
            "nginx",
            "library/nginx",
            "index.docker.io/user/app",
            "docker.io/library/x",
        ] {
            assert_eq!(chosen(&cfg, image), expect, "{key} {image}");
        }
    }
    // docker's own key wins over the aliases.
    let cfg = r#"{"credHelpers":{"docker.io":"b","https://index.docker.io/v1/":"a","index.docker.io":"c"}}"#;
    assert_eq!(chosen(cfg, "nginx"), "helper:a");
    let hub = ImageName::parse("nginx").unwrap();
    assert_eq!(helper_server(&hub), DOCKER_HUB_SERVER);
    let ecr = ImageName::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1").unwrap();
    assert_eq!(
        helper_server(&ecr),
        "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    );
    assert_eq!(
        helper_server(&ImageName::parse("localhost:5000/a").unwrap()),
        "localhost:5000"
    );
}

#[test]
fn the_helper_answer_key_matches_the_image_under_the_kubelets_rules() {
    for (image, other) in [
        ("nginx", "quay.io/nginx"),
        ("docker.io/user/app", "ghcr.io/user/app"),
        ("reg.io/a/b/c", "sub.reg.io/a/b/c"),
        ("localhost:5000/a", "localhost:5001/a"),
        ("127.0.0.1:5000/team/app", "127.0.0.1/team/app"),
        ("[::1]:5000/a", "[::1]:5001/a"),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/app",
        ),
        ("us-docker.pkg.dev/p/r/i", "eu-docker.pkg.dev/p/r/i"),
    ] {
        let q = query(image);
        let key = q.image.registry();
        assert!(q.target.matched_by(key), "{key} must match {image}");
        let mut ring = Keyring::new();
        ring.add(key, ()).unwrap();
        assert_eq!(ring.lookup(&q.target).0.len(), 1, "{key} {image}");
        // It does not serve another registry (other port, sibling domain).
        assert!(!query(other).target.matched_by(key), "{key} {other}");
    }
}

#[test]
fn a_bad_helper_name_is_a_one_line_error_naming_the_fix() {
    let t = tree();
    write(
        &t.home,
        ".docker/config.json",
        r#"{"credHelpers":{"reg.io":"../../bin/sh"}}"#,
    );
    let p = DockerConfigBackend::new(t.paths.clone());
    let err = p.provide(&query("reg.io/app")).unwrap_err().to_string();
    assert!(
        err.starts_with("docker-config: credential helper name \"../../bin/sh\" (credHelpers in "),
        "{err}"
    );
    assert!(
        err.contains("contains '/'") && err.contains("docker-credential-<suffix>"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn a_missing_cred_helper_is_an_error_but_a_missing_creds_store_is_not() {
    let t = tree();
    write(
        &t.home,
        ".docker/config.json",
        r#"{"auths":{"other.io":{"auth":"dTpw"}},"credHelpers":{"reg.io":"surely-not-installed-7f3a"},"credsStore":"surely-not-installed-7f3a"}"#,
    );
    let p = DockerConfigBackend::new(t.paths.clone());
    // credHelpers names this registry: a missing helper is an error naming path and fix.
    let err = p.provide(&query("reg.io/app")).unwrap_err().to_string();
    assert!(
        err.starts_with("docker-config: credential helper docker-credential-surely-not-installed-7f3a (credHelpers in "),
        "{err}"
    );
    assert!(
        err.contains("for reg.io is not on PATH; install it"),
        "{err}"
    );
    // credsStore is a default for all registries, often a desktop leftover: no
    // credentials, as the kubelet (which never ran it) would answer.
    let Outcome::Answer(a) = p.provide(&query("third.io/app")).unwrap() else {
        panic!("expected an answer");
    };
    assert!(a.auth.is_empty());
    // auths still answer where they have credentials.
    let Outcome::Answer(a) = p.provide(&query("other.io/app")).unwrap() else {
        panic!("expected an answer");
    };
    assert_eq!(a.auth["other.io"].username, "u");
}

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
