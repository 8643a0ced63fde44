//! The shape of the house, checked: no crate of the workspace has an import circle between
//! its top-level modules (doc links included), the binary's core imports none of its edges,
//! no crate of the workspace depends on the binary, and `src/` names no cloud SDK variable
//! outside its tests (backend knowledge lives in the backend crates).
//!
//! A crate's module graph is read from its source text, following its `mod` declarations
//! from `src/lib.rs` (or `src/main.rs`): one node per top-level module (a directory module
//! with all its files is one node, an inline `mod x { .. }` of the crate root one too), and
//! an edge A → B wherever A's text names `crate::B` (also as `crate::{B, ..}`, or as
//! `super::B` from a depth that reaches the crate root), in code or in doc links alike.
//! `#[cfg(test)]` modules (inline or in their own file) are left out: a test may reach
//! anywhere.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One file of a module: where it is, how deep below the crate root (a top-level module's
/// own file is 1), and its text with comments kept and `#[cfg(test)]` modules blanked out
/// (newlines kept, so line numbers stay right).
struct Part {
    path: PathBuf,
    depth: usize,
    text: String,
}

/// A crate's top-level modules, by name.
type Modules = BTreeMap<String, Vec<Part>>;

/// `text` with the inside of comments and of string and character literals turned into
/// spaces (byte for byte, newlines kept), so braces, `mod` and attributes can be found by
/// position in it and the same positions used in `text`.
fn code_only(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut j, mut depth) = (i + 2, 1);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    (depth, j) = (depth + 1, j + 2);
                } else if b[j..].starts_with(b"*/") {
                    (depth, j) = (depth - 1, j + 2);
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#") || rest.starts_with(b"br"))
            && (i == 0 || !ident(b[i - 1]))
            && {
                let after_r = if rest[0] == b'b' { 2 } else { 1 };
                let hashes = rest[after_r..].iter().take_while(|&&c| c == b'#').count();
                rest.get(after_r + hashes) == Some(&b'"')
            }
        {
            let after_r = if rest[0] == b'b' { 2 } else { 1 };
            let hashes = rest[after_r..].iter().take_while(|&&c| c == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let body = i + after_r + hashes + 1;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |n| body + n + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{7f}', '{') or a lifetime or label ('a).
            if rest.get(1) == Some(&b'\\') {
                let end = b[i + 3..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(b.len(), |n| i + 3 + n + 1);
                blank(&mut out, i, end);
                i = end;
            } else {
                let len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + len) == Some(&b'\'') {
                    blank(&mut out, i, i + len + 2);
                    i += len + 2;
                } else {
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The index just past the bracket that closes the one at `open` (`{`, `[` or `(`), in
/// code-only bytes.
fn closing(code: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

fn skip_space(code: &[u8], mut i: usize) -> usize {
    while i < code.len() && code[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The identifier at `i` (possibly empty) and the index after it.
fn ident_at(code: &[u8], i: usize) -> (String, usize) {
    let end = i + code[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (String::from_utf8_lossy(&code[i..end]).into_owned(), end)
}

/// A `mod` item found at brace depth 0 of a file: its name, whether it is `#[cfg(test)]`,
/// where it starts (its first attribute) and ends, and whether its body is inline.
struct ModItem {
    name: String,
    test: bool,
    start: usize,
    end: usize,
    inline: bool,
}

/// The `mod` items at brace depth 0 of a file's code-only bytes.
fn mod_items(code: &[u8]) -> Vec<ModItem> {
    let mut items = Vec::new();
    let (mut i, mut depth) = (0, 0usize);
    // The start of the attributes in front of the next item, and whether one is cfg(test).
    let (mut attrs_from, mut test) = (None, false);
    while i < code.len() {
        match code[i] {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'#' if depth == 0 && code.get(i + 1) == Some(&b'[') => {
                let end = closing(code, i + 1);
                let attr: String = String::from_utf8_lossy(&code[i..end])
                    .split_whitespace()
                    .collect();
                attrs_from.get_or_insert(i);
                test |= attr == "#[cfg(test)]";
                i = end;
                continue;
            }
            c if depth == 0 && (c.is_ascii_alphabetic() || c == b'_') => {
                let (word, after) = ident_at(code, i);
                let mut j = skip_space(code, after);
                if word == "pub" && code.get(j) == Some(&b'(') {
                    j = skip_space(code, closing(code, j));
                }
                let (word, after) = if word == "pub" {
                    ident_at(code, j)
                } else {
                    (word, after)
                };
                if word == "mod" {
                    let (name, after) = ident_at(code, skip_space(code, after));
                    let k = skip_space(code, after);
                    let inline = code.get(k) == Some(&b'{');
                    let end = if inline { closing(code, k) } else { k + 1 };
                    items.push(ModItem {
                        name,
                        test,
                        start: attrs_from.unwrap_or(i),
                        end,
                        inline,
                    });
                    (attrs_from, test, i) = (None, false, end);
                    continue;
                }
                (attrs_from, test, i) = (None, false, after.max(i + 1));
                continue;
            }
            c if !c.is_ascii_whitespace() => (attrs_from, test) = (None, false),
            _ => {}
        }
        i += 1;
    }
    items
}

/// `text` with the bytes from `from` to `to` turned into spaces (newlines kept).
fn blank_out(text: &mut String, from: usize, to: usize) {
    let mut bytes = std::mem::take(text).into_bytes();
    for c in &mut bytes[from..to] {
        if *c != b'\n' {
            *c = b' ';
        }
    }
    // Whole UTF-8 sequences inside the range became spaces, those outside are untouched,
    // except where the range cuts one: then lossy, which only touches that character.
    *text = String::from_utf8_lossy(&bytes).into_owned();
}

/// Reads the module in `file` (its submodules live in `dir`) and every file module below
/// it, without `#[cfg(test)]` modules, into `parts`.
fn read_module(file: &Path, dir: &Path, depth: usize, parts: &mut Vec<Part>) {
    let mut text =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let code = code_only(&text);
    for item in mod_items(&code) {
        if item.test {
            blank_out(&mut text, item.start, item.end);
        } else if !item.inline {
            let (child, child_dir) = module_file(dir, &item.name);
            read_module(&child, &child_dir, depth + 1, parts);
        }
    }
    parts.push(Part {
        path: file.to_path_buf(),
        depth,
        text,
    });
}

/// The file of module `name` declared in a module whose submodules live in `dir`, and the
/// directory of its own submodules.
fn module_file(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let flat = dir.join(format!("{name}.rs"));
    let nested = dir.join(name).join("mod.rs");
    let file = if flat.is_file() { flat } else { nested };
    assert!(
        file.is_file(),
        "no file for mod {name} in {}",
        dir.display()
    );
    (file, dir.join(name))
}

/// The top-level modules of the crate whose sources are in `src` (its `lib.rs`, else its
/// `main.rs`).
fn crate_modules(src: &Path) -> Modules {
    let lib = src.join("lib.rs");
    let root_file = if lib.is_file() {
        lib
    } else {
        src.join("main.rs")
    };
    let text = std::fs::read_to_string(&root_file).unwrap();
    let code = code_only(&text);
    let mut modules = Modules::new();
    for item in mod_items(&code).into_iter().filter(|m| !m.test) {
        let mut parts = Vec::new();
        if item.inline {
            let mut inline = text.clone();
            blank_out(&mut inline, 0, item.start);
            blank_out(&mut inline, item.end, text.len());
            parts.push(Part {
                path: root_file.clone(),
                depth: 1,
                text: inline,
            });
        } else {
            let (file, dir) = module_file(src, &item.name);
            read_module(&file, &dir, 1, &mut parts);
        }
        modules.insert(item.name, parts);
    }
    modules
}

/// The names at the crate root that `text` (a file `depth` below the root) names, each
/// with the line of its first mention: `crate::x`, `crate::{x, y::z}`, and `super::x` with
/// as many `super::` as `depth`.
fn root_names(text: &str, depth: usize) -> BTreeMap<String, usize> {
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut names = BTreeMap::new();
    let mut i = 0;
    while i < b.len() {
        let starts_path = i == 0 || !(ident(b[i - 1]) || b[..i].ends_with(b"::"));
        let after = if !starts_path {
            None
        } else if b[i..].starts_with(b"crate::") {
            Some(i + "crate::".len())
        } else {
            let n = b[i..].chunks(7).take_while(|c| *c == b"super::").count();
            (n > 0 && n == depth).then_some(i + 7 * n)
        };
        let Some(at) = after else {
            i += 1;
            continue;
        };
        let line = 1 + b[..i].iter().filter(|&&c| c == b'\n').count();
        if b.get(at) == Some(&b'{') {
            // A group: the first segment of each path at its top level.
            let end = closing(b, at);
            let mut level = 0;
            let mut expect = true;
            for (k, &c) in b[at + 1..end - 1].iter().enumerate() {
                match c {
                    b'{' => level += 1,
                    b'}' => level -= 1,
                    b',' if level == 0 => expect = true,
                    c if expect && ident(c) => {
                        let (name, _) = ident_at(b, at + 1 + k);
                        names.entry(name).or_insert(line);
                        expect = false;
                    }
                    c if !c.is_ascii_whitespace() => expect = false,
                    _ => {}
                }
            }
            i = end;
        } else {
            let (name, end) = ident_at(b, at);
            names.entry(name).or_insert(line);
            i = end.max(at);
        }
    }
    names
}

/// Module → the other top-level modules it names, each with where it first does
/// (`path:line`).
fn graph(modules: &Modules) -> BTreeMap<String, BTreeMap<String, String>> {
    modules
        .iter()
        .map(|(name, parts)| {
            let mut deps = BTreeMap::new();
            for part in parts {
                for (dep, line) in root_names(&part.text, part.depth) {
                    if dep != *name && modules.contains_key(&dep) {
                        let at = part.path.strip_prefix(root()).unwrap_or(&part.path);
                        deps.entry(dep)
                            .or_insert_with(|| format!("{}:{line}", at.display()));
                    }
                }
            }
            (name.clone(), deps)
        })
        .collect()
}

/// Every import circle of the graph, one per strongly connected group of modules, as its
/// shortest cycle through the group's first module, with where each step is named:
/// `a -> b (src/a.rs:3) -> a (src/b.rs:9)`.
fn circles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for d in graph[&m].keys() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if done.contains(m) || !reachable[m].contains(m) {
            continue;
        }
        let group: BTreeSet<&String> = graph
            .keys()
            .filter(|o| reachable[m].contains(*o) && reachable[*o].contains(m))
            .collect();
        done.extend(group.iter().map(|g| (*g).clone()));
        // Breadth-first from m back to m, within the group.
        let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = VecDeque::from([m]);
        'search: while let Some(x) = queue.pop_front() {
            for d in graph[x].keys().filter(|d| group.contains(d)) {
                if d == m {
                    came_from.insert(m, x);
                    break 'search;
                }
                if !came_from.contains_key(d) {
                    came_from.insert(d, x);
                    queue.push_back(d);
                }
            }
        }
        let mut back = Vec::new();
        let mut at = came_from[m];
        while at != m {
            back.push(at);
            at = came_from[at];
        }
        let cycle: Vec<&String> = std::iter::once(m)
            .chain(back.into_iter().rev())
            .chain(std::iter::once(m))
            .collect();
        let mut text = m.clone();
        for step in cycle.windows(2) {
            text.push_str(&format!(" -> {} ({})", step[1], graph[step[0]][step[1]]));
        }
        out.push(text);
    }
    out
}

/// The workspace's crates (the root `Cargo.toml`'s `members`), as their `src` directories.
fn workspace_sources() -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("Cargo.toml: no [workspace] members list")
        .0;
    let sources: Vec<PathBuf> = list
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| root().join(m).join("src"))
        .collect();
    assert!(sources.len() >= 5, "workspace members: {sources:?}");
    sources
}

#[test]
fn no_crate_of_the_workspace_has_an_import_circle_between_its_top_level_modules() {
    let mut found = Vec::new();
    for src in workspace_sources() {
        let modules = crate_modules(&src);
        assert!(
            modules.len() >= 2,
            "{}: modules {:?}",
            src.display(),
            modules.keys()
        );
        let at = src
            .strip_prefix(root())
            .unwrap_or(&src)
            .display()
            .to_string();
        for circle in circles(&graph(&modules)) {
            found.push(format!("{at}: {circle}"));
        }
    }
    assert!(
        found.is_empty(),
        "import circles between top-level modules (move what both need down into a third \
         module, or into keyring-api / keyring-net):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_binarys_core_imports_no_edge_and_nothing_imports_the_command_line() {
    let graph = graph(&crate_modules(&root().join("src")));
    assert!(
        graph.contains_key("core") && graph.contains_key("cli"),
        "{graph:?}"
    );
    for (m, deps) in &graph {
        assert!(
            !deps.contains_key("cli"),
            "{m} imports cli ({})",
            deps["cli"]
        );
    }
    for edge in ["cli", "get", "explain", "io", "args"] {
        assert!(
            !graph["core"].contains_key(edge),
            "core imports {edge} ({})",
            graph["core"][edge]
        );
    }
}

/// The reader on a made-up crate: every way of naming a module counts, test modules and
/// comments-only look-alikes do not, a directory module is one node.
#[test]
fn the_module_reader_finds_each_kind_of_import_and_skips_test_modules() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    let files = [
        (
            "lib.rs",
            "//! [`crate::a`]\npub mod a;\npub mod b;\nmod c;\npub mod d;\n\
             #[cfg(test)]\nmod tests;\npub mod inline {\n    pub use crate::d::X;\n}\n",
        ),
        // a -> b only through a grouped import.
        ("a.rs", "use crate::{b, inline::Y as _};\n"),
        // b -> c only through a doc link.
        ("b.rs", "/// See [`super::c::f`].\npub fn g() {}\n"),
        // c -> d in a directory module's nested file; its tests name a, which must not count.
        ("c.rs", "pub mod deep;\n"),
        ("c/deep.rs", "pub fn f() { super::super::d::h() }\n#[cfg(test)]\n#[allow(unused)]\nmod tests {\n    const S: &str = \"}\";\n    use crate::a;\n}\n"),
        // d -> b, so b -> c -> d -> b is a circle; its test file names a, which does not count.
        ("d/mod.rs", "pub fn h() { crate::b::g() }\n#[cfg(test)]\nmod tests;\n"),
        ("d/tests.rs", "use crate::a;\n"),
        ("tests.rs", "use crate::{a, b, c, d};\n"),
    ];
    for (path, text) in files {
        crate::common::write(&src.join(path), text);
    }
    let modules = crate_modules(src);
    assert_eq!(
        modules.keys().collect::<Vec<_>>(),
        ["a", "b", "c", "d", "inline"]
    );
    let graph = graph(&modules);
    let deps = |m: &str| graph[m].keys().cloned().collect::<Vec<_>>();
    assert_eq!(deps("a"), ["b", "inline"]);
    assert_eq!(deps("b"), ["c"]);
    assert_eq!(deps("c"), ["d"]);
    assert_eq!(deps("d"), ["b"]);
    assert_eq!(deps("inline"), ["d"]);
    let at = |p: &str| src.join(p).display().to_string();
    assert_eq!(
        circles(&graph),
        [format!(
            "b -> c ({}:1) -> d ({}:1) -> b ({}:1)",
            at("b.rs"),
            at("c/deep.rs"),
            at("d/mod.rs")
        )]
    );
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
    for (m, parts) in crate_modules(&root().join("src")) {
        for part in parts {
            for prefix in [
                "\"AWS_",
                "\"GOOGLE_",
                "\"GCE_",
                "\"AZURE_",
                "\"CLOUDSDK_",
                "\"IDENTITY_",
            ] {
                assert!(
                    !part.text.contains(prefix),
                    "{} (module {m}) names a cloud SDK variable ({prefix}...): it belongs in \
                     the backend's crate",
                    part.path.display()
                );
            }
        }
    }
}
