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

mod one_image;
