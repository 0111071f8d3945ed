//! The code's shape: the stages of `src/` depend on each other one way (no import cycle), and
//! nothing in the repository reads the sibling `../shared` folder a user's clone lacks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → the modules it names through `crate::`, read from the source text.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // A folder module (`src/identity/`) is one node: its files' imports are the folder's.
    let mut files: Vec<_> = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            files.push(path);
        }
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    files.sort();
    let module_of = |path: &Path| {
        if path.parent() != Some(src.as_path()) {
            let folder = path.parent().unwrap().file_name().unwrap();
            return folder.to_str().unwrap().to_owned();
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        // `x_tests.rs` files are `#[path]` test modules of `x`.
        stem.strip_suffix("_tests")
            .map(str::to_owned)
            .unwrap_or(stem)
    };
    assert!(
        files.iter().any(|p| module_of(p) == "identity"),
        "folder modules are read too"
    );
    let modules: BTreeSet<String> = files.iter().map(|p| module_of(p)).collect();
    let mut graph = BTreeMap::new();
    for path in &files {
        let module = module_of(path);
        let stem = path.file_stem().unwrap().to_str().unwrap();
        if module == "lib" || module == "main" || stem.ends_with("tests") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        // Test modules may reach anywhere; only the code the binary runs counts.
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let mut names = vec![rest
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap()
                .to_owned()];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                names = group
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap().to_owned())
                    .collect();
            }
            for name in names {
                if modules.contains(&name) && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `node`, if there is one.
fn find_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|n| n == node) {
        let mut cycle = path[start..].to_vec();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_owned());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(cycle) = find_cycle(graph, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn the_stages_import_each_other_one_way_only() {
    let graph = import_graph();
    assert!(graph.len() > 15, "read the modules: {graph:?}");
    assert!(
        graph["proxy"].contains("send")
            && graph["send"].contains("upstream")
            && graph["admit"].contains("identity")
            && graph.contains_key("identity"),
        "the reader sees imports: {graph:?}"
    );
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let cycle = find_cycle(&graph, node, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap().join(" -> ")
        );
    }
    for (module, forbidden) in [
        ("unknown_length", "proxy"),
        ("session", "send"),
        ("create_session", "session"),
        ("sign", "error"),
    ] {
        assert!(
            !graph[module].contains(forbidden),
            "{module} must not depend on {forbidden}"
        );
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    let cycle = find_cycle(&graph, "a", &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(cycle.unwrap(), ["a", "b", "a"]);
}

#[test]
fn nothing_reads_the_sibling_shared_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offenders = Vec::new();
    let mut stack: Vec<_> = ["src", "tests", "benches", ".ci", "deploy"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    stack.push(root.join("Cargo.toml"));
    let needle = ["..", "shared/"].join("/");
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if path.ends_with("vectors") {
                continue;
            }
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            if text.contains(&needle) {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "these read ../shared: {offenders:?}");
}
