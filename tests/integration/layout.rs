//! The code's shape: the stage folders of `src/` depend on each other one way (no import cycle), and
//! nothing in the repository reads the sibling `../shared` folder a user's clone lacks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top of `src/` (a stage folder such as `route/`, or a file such as `proxy.rs`) → the
/// others it names through `crate::`, read from the source text of the code the binary runs.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    // A folder is one node, however deep its files sit.
    let node_of = |path: &Path| {
        let top = path
            .strip_prefix(&src)
            .unwrap()
            .components()
            .next()
            .unwrap();
        let top = top.as_os_str().to_str().unwrap();
        top.strip_suffix(".rs").unwrap_or(top).to_owned()
    };
    assert!(
        files.iter().any(|p| p.ends_with("admit/identity/mod.rs")),
        "nested folders are read too"
    );
    let nodes: BTreeSet<String> = files.iter().map(|p| node_of(p)).collect();
    let mut graph = BTreeMap::new();
    for path in &files {
        let node = node_of(path);
        let stem = path.file_stem().unwrap().to_str().unwrap();
        // Test files (`x_tests.rs`, `tests.rs`) may reach anywhere; only the code the binary
        // runs counts.
        if node == "lib" || node == "main" || stem.ends_with("tests") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps: &mut BTreeSet<String> = graph.entry(node.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name = rest
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap();
            if nodes.contains(name) && name != node {
                deps.insert(name.to_owned());
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
            && graph["serve"].contains("admit"),
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
    // The stages lib.rs tells run top to bottom; none reaches back up to one that calls it.
    for (module, forbidden) in [
        ("send", "proxy"),
        ("send", "error"),
        ("session", "send"),
        ("upstream", "session"),
        ("route", "admit"),
        ("sign", "error"),
        ("sign", "admit"),
        ("workers", "serve"),
        ("body", "sign"),
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
