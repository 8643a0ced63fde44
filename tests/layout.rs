//! The shape of the house, checked: the binary's modules import each other without a circle
//! (doc links included), no crate of the workspace depends on the binary, and `src/` names
//! no cloud SDK variable outside its tests (backend knowledge lives in the backend crates).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level modules of `src/` and the source text of each (a directory module's files
/// together), without its `#[cfg(test)] mod tests` block.
fn modules() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("src")).unwrap().flatten() {
        let path = entry.path();
        let (name, text) = if path.is_dir() {
            let mut text = String::new();
            for f in std::fs::read_dir(&path).unwrap().flatten() {
                text.push_str(&without_tests(&std::fs::read_to_string(f.path()).unwrap()));
            }
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                text,
            )
        } else {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = without_tests(&std::fs::read_to_string(&path).unwrap());
            (name, text)
        };
        out.insert(name, text);
    }
    out
}

fn without_tests(text: &str) -> String {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// Module name -> the other top-level modules it names as `crate::<module>`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    mods.iter()
        .map(|(name, text)| {
            let deps = text
                .match_indices("crate::")
                .filter_map(|(i, _)| {
                    let rest = &text[i + "crate::".len()..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    let m = &rest[..end];
                    (m != name && mods.contains_key(m)).then(|| m.to_string())
                })
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

#[test]
fn the_binarys_modules_import_each_other_without_a_circle() {
    let graph = graph();
    assert!(
        graph.contains_key("core") && graph.contains_key("cli"),
        "{graph:?}"
    );
    // Depth-first search with colours: grey on the stack, black done.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        grey: &mut Vec<&'a str>,
        black: &mut BTreeSet<&'a str>,
    ) {
        if black.contains(m) {
            return;
        }
        if let Some(i) = grey.iter().position(|g| *g == m) {
            panic!("import circle: {} -> {m}", grey[i..].join(" -> "));
        }
        grey.push(m);
        for d in &graph[m] {
            visit(d, graph, grey, black);
        }
        grey.pop();
        black.insert(m);
    }
    let mut black = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut black);
    }
    // Nothing imports the command line, and the core knows no edge.
    for (m, deps) in &graph {
        assert!(!deps.contains("cli"), "{m} imports cli");
    }
    for edge in ["cli", "get", "explain", "io", "args"] {
        assert!(!graph["core"].contains(edge), "core imports {edge}");
    }
}

#[test]
fn no_workspace_crate_depends_on_the_binary() {
    for dir in ["plugins", "crates"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            assert!(
                !text.contains("kubelet-keyring =") && !text.contains("path = \"../..\""),
                "{} depends on the binary",
                manifest.display()
            );
        }
    }
}

#[test]
fn src_names_no_cloud_sdk_variable() {
    for (m, text) in modules() {
        for prefix in [
            "\"AWS_",
            "\"GOOGLE_",
            "\"GCE_",
            "\"AZURE_",
            "\"CLOUDSDK_",
            "\"IDENTITY_",
        ] {
            assert!(
                !text.contains(prefix),
                "src/{m} names a cloud SDK variable ({prefix}...): it belongs in the backend's crate"
            );
        }
    }
}
