use super::*;

fn image(s: &str) -> ImageName {
    ImageName::parse(s).unwrap()
}

fn section(yaml: &str) -> MirrorsConfig {
    serde_norway::from_str(yaml).unwrap()
}

fn loaded(yaml: &str) -> Mirrors {
    let mut m = Mirrors::new(section(yaml)).unwrap();
    m.read_files();
    m
}

/// The mirror images of `img` and the strategy, or "none".
fn route(m: &Mirrors, img: &str) -> String {
    match m.lookup(&image(img)).route {
        None => "none".into(),
        Some(r) => {
            let images: Vec<String> = r.mirrors.iter().map(|m| m.image.to_string()).collect();
            format!("{} {}", images.join(","), r.strategy.as_str())
        }
    }
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_longest_written_source_wins_and_the_rest_of_the_name_follows_the_mirror() {
    let m = loaded(
        "credentials: mirrorLast
registries:
  - source: docker.io
    mirrors: [harbor.example.com/dockerhub, mirror.example.com:5000]
  - source: docker.io/library
    mirrors: [lib.example.com/official]
    credentials: mirrorOnly
  - source: '*.corp.example.com'
    mirrors: [cache.example.com/corp]
",
    );
    assert_eq!(
        route(&m, "docker.io/team/app"),
        "harbor.example.com/dockerhub/team/app,mirror.example.com:5000/team/app mirrorLast"
    );
    assert_eq!(
        route(&m, "docker.io/library/nginx"),
        "lib.example.com/official/nginx mirrorOnly"
    );
    assert_eq!(
        route(&m, "a.b.corp.example.com/x"),
        "cache.example.com/corp/x mirrorLast"
    );
    // A path that only starts like the prefix, another port, another host: none.
    assert_eq!(
        route(&m, "docker.io/libraryx/app")
            .split(',')
            .next()
            .unwrap(),
        "harbor.example.com/dockerhub/libraryx/app"
    );
    assert_eq!(route(&m, "corp.example.com/x"), "none");
    assert_eq!(route(&m, "quay.io/x"), "none");
    // A path prefix on docker.io makes every docker.io answer image-scoped.
    assert_eq!(
        m.lookup(&image("docker.io/team/app")).scope,
        CacheKeyType::Image
    );
    assert_eq!(m.lookup(&image("quay.io/x")).scope, CacheKeyType::Global);
}

#[test]
fn bad_sources_and_mirrors_are_refused_naming_the_field() {
    for (yaml, field) in [
        (
            "registries: [{source: 'https://docker.io', mirrors: [m.example.com]}]",
            "mirrors.registries[0].source",
        ),
        (
            "registries: [{source: docker.io, mirrors: []}]",
            "mirrors.registries[0].mirrors",
        ),
        (
            "registries: [{source: docker.io, mirrors: [m.example.com, nohost]}]",
            "mirrors.registries[0].mirrors[1]",
        ),
        (
            "registries: [{source: docker.io, mirrors: ['docker.io/']}]",
            "mirrors.registries[0].mirrors[0]",
        ),
        (
            "registries: [{source: '*.example.com/x', mirrors: [m.example.com]}]",
            "mirrors.registries[0].source",
        ),
        (
            "registries: [{source: docker.io, mirrors: ['M.example.com/UPPER']}]",
            "mirrors.registries[0].mirrors[0]",
        ),
    ] {
        let e = Mirrors::new(section(yaml)).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{field}: ")), "{yaml}: {e}");
    }
    assert!(serde_norway::from_str::<MirrorsConfig>("credentials: mirrorSometimes").is_err());
    // mesosphere's names are read too.
    let c = section("credentials: MirrorCredentialsOnly");
    assert_eq!(c.credentials, Strategy::MirrorOnly);
}

#[test]
fn containerd_namespaces_are_tried_as_containerd_tries_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("docker.io/hosts.toml"),
        r#"server = "https://registry-1.docker.io"
[host."https://harbor.example.com/v2/dockerhub"]
  capabilities = ["pull", "resolve"]
  override_path = true
[host."https://a-mirror.example.com"]
  capabilities = ["pull"]
[host."https://registry-1.docker.io"]
"#,
    );
    write(
        &d.join("reg.example.com_5000_/hosts.toml"),
        "[host.\"http://10.0.0.5:5000\"]\n",
    );
    write(
        &d.join("reg.example.com:5000/hosts.toml"),
        "[host.\"https://wrong.example.com\"]\n",
    );
    std::fs::create_dir_all(d.join("certs-only.example.com")).unwrap();
    write(
        &d.join("_default/hosts.toml"),
        "server = \"https://everything.example.com\"\n",
    );
    write(
        &d.join("broken.example.com/hosts.toml"),
        "[host.\"https://x\"\n",
    );
    let m = loaded(&format!("containerd: {{hostsDir: {}}}", d.display()));
    // File order, not alphabetical; Docker Hub's own endpoint is not a mirror.
    assert_eq!(
        route(&m, "docker.io/library/nginx"),
        "harbor.example.com/dockerhub/library/nginx,a-mirror.example.com/library/nginx mirrorFirst"
    );
    assert_eq!(
        route(&m, "reg.example.com:5000/x"),
        "10.0.0.5:5000/x mirrorFirst"
    );
    assert_eq!(route(&m, "certs-only.example.com/x"), "none");
    assert_eq!(
        route(&m, "quay.io/x/y"),
        "everything.example.com/x/y mirrorFirst"
    );
    assert_eq!(route(&m, "broken.example.com/x"), "none");
    // An edited hosts.toml is another cache context.
    let before = m.context_bytes();
    write(
        &d.join("docker.io/hosts.toml"),
        "server = \"https://registry-1.docker.io\"\n",
    );
    assert_ne!(
        loaded(&format!("containerd: {{hostsDir: {}}}", d.display())).context_bytes(),
        before
    );
    // No tree at all: no mirrors, no error.
    let m = loaded("containerd: {hostsDir: /nonexistent/certs.d}");
    assert_eq!(route(&m, "docker.io/library/nginx"), "none");
}

#[test]
fn registries_conf_mirrors_follow_containers_image_rewriting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registries.conf");
    write(
        &path,
        r#"unqualified-search-registries = ["docker.io"]
short-name-mode = "enforcing"

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "harbor.example.com/dockerhub"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "mirror.example.com:5000/"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.net/bar"

[[registry]]
location = "quay.io"
[[registry.mirror]]
location = "quay-cache.example.com"

[[registry]]
prefix = "*.apps.example.com"
[[registry.mirror]]
location = "apps-cache.example.com/apps"

[aliases]
"nginx" = "docker.io/library/nginx"
"#,
    );
    let m = loaded(&format!(
        "registriesConf: {{path: {}, credentials: mirrorLast}}",
        path.display()
    ));
    assert_eq!(
        route(&m, "docker.io/library/nginx"),
        "harbor.example.com/dockerhub/library/nginx,mirror.example.com:5000/library/nginx mirrorLast"
    );
    // A location that rewrites the prefix is where the images are.
    assert_eq!(
        route(&m, "example.com/foo/app"),
        "internal.example.net/bar/app mirrorLast"
    );
    assert_eq!(
        m.lookup(&image("example.com/other")).scope,
        CacheKeyType::Image
    );
    assert_eq!(
        route(&m, "quay.io/org/app"),
        "quay-cache.example.com/org/app mirrorLast"
    );
    assert_eq!(
        route(&m, "x.y.apps.example.com/team/app"),
        "apps-cache.example.com/apps/team/app mirrorLast"
    );
    // containers/image's own quirk: a prefix without a port covers the host with one.
    assert_eq!(
        route(&m, "quay.io:5000/org/app"),
        "quay-cache.example.com:5000/org/app mirrorLast"
    );
    assert_eq!(route(&m, "gcr.io/x"), "none");
}

/// One `[[registry]]` of `registries.conf` for `prefix` (its own location) with one mirror.
fn table(prefix: &str, mirror: &str) -> String {
    format!(
        "[[registry]]\nprefix = \"{prefix}\"\nlocation = \"{prefix}\"\n[[registry.mirror]]\nlocation = \"{mirror}\"\n"
    )
}

#[test]
fn registries_conf_drop_ins_apply_in_name_order_each_table_replacing_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registries.conf");
    let d = dir.path().join("registries.conf.d");
    write(
        &path,
        r#"[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "old-mirror.example.com"

[[registry]]
location = "quay.io"
[[registry.mirror]]
location = "quay-cache.example.com"
"#,
    );
    // 20 replaces docker.io's table (its mirrors are not added to the old ones), then 30
    // replaces it again; a prefix-less table's prefix is its location, so quay.io's is
    // replaced by 10 too.
    for (name, prefix, mirror) in [
        ("20-hub.conf", "docker.io", "first.example.com"),
        ("30-hub.conf", "docker.io", "harbor.example.com/hub"),
        ("10-quay.conf", "quay.io", "quay-2.example.com"),
        ("40-gcr.conf", "gcr.io", "gcr-cache.example.com"),
        // Not drop-ins: another suffix, a subdirectory.
        ("50-hub.conf.bak", "docker.io", "bak.example.com"),
        ("sub.conf/60.conf", "docker.io", "sub.example.com"),
    ] {
        write(&d.join(name), &table(prefix, mirror));
    }
    // One that does not parse is left out.
    write(&d.join("70-broken.conf"), "[[registry]\n");
    let yaml = format!(
        "registriesConf: {{path: {}, dropInDir: {}, credentials: mirrorOnly}}",
        path.display(),
        d.display()
    );
    let m = loaded(&yaml);
    assert_eq!(
        route(&m, "docker.io/library/nginx"),
        "harbor.example.com/hub/library/nginx mirrorOnly"
    );
    assert_eq!(
        route(&m, "quay.io/org/app"),
        "quay-2.example.com/org/app mirrorOnly"
    );
    assert_eq!(
        route(&m, "gcr.io/p/app"),
        "gcr-cache.example.com/p/app mirrorOnly"
    );
    // The drop-ins are part of the cache context: an edit is a new context.
    let before = m.files.context_bytes();
    write(
        &d.join("40-gcr.conf"),
        &table("gcr.io", "gcr-2.example.com"),
    );
    assert_ne!(loaded(&yaml).files.context_bytes(), before);
    // `dropInDir: null` reads none; a missing directory is no drop-in and no error.
    let none = loaded(&format!(
        "registriesConf: {{path: {}, dropInDir: null}}",
        path.display()
    ));
    assert_eq!(
        route(&none, "docker.io/library/nginx"),
        "old-mirror.example.com/library/nginx mirrorFirst"
    );
    let missing = loaded(&format!(
        "registriesConf: {{path: {}, dropInDir: {}}}",
        path.display(),
        dir.path().join("nonexistent.d").display()
    ));
    assert_eq!(route(&missing, "gcr.io/p/app"), "none");
}

#[test]
fn the_written_list_wins_over_containerd_and_containerd_over_registries_conf() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("certs.d/docker.io/hosts.toml"),
        "[host.\"https://from-containerd.example.com\"]\n",
    );
    write(
        &d.join("certs.d/quay.io/hosts.toml"),
        "[host.\"https://quay-containerd.example.com\"]\n",
    );
    write(
        &d.join("registries.conf"),
        "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"quay-crio.example.com\"\n\
         [[registry]]\nlocation = \"ghcr.io\"\n[[registry.mirror]]\nlocation = \"ghcr-crio.example.com\"\n",
    );
    let m = loaded(&format!(
        "registries: [{{source: docker.io, mirrors: [written.example.com]}}]
containerd: {{hostsDir: {0}/certs.d}}
registriesConf: {{path: {0}/registries.conf}}",
        d.display()
    ));
    assert_eq!(
        route(&m, "docker.io/x/y"),
        "written.example.com/x/y mirrorFirst"
    );
    assert_eq!(
        route(&m, "quay.io/x/y"),
        "quay-containerd.example.com/x/y mirrorFirst"
    );
    assert_eq!(
        route(&m, "ghcr.io/x/y"),
        "ghcr-crio.example.com/x/y mirrorFirst"
    );
}
