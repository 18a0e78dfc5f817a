//! gp-host's modules import only modules below them: no circle in the import graph.
//!
//! Every `crate::…` and `super::…` path in `src/` counts, not only `use` lines (an inline
//! `crate::manager::Manager::new()` is as much a dependency as an import), and a path through
//! a re-export (`crate::Manager`, re-exported by `lib.rs` from `manager`) counts as a
//! dependency on the module that defines the item. Dependencies are compared between
//! siblings: `runtime::executor` using `metrics::recorder` is an edge `runtime → metrics` among
//! the crate's top-level modules; `runtime::executor` using `runtime::slot` is an edge
//! `executor → slot` among `runtime`'s children. A child using its parent's items, or a parent
//! its children's, is not an edge. Each set of siblings must be free of circles.
//!
//! `#[cfg(test)]` modules at the end of a file and comments are left out: tests may reach
//! anywhere, and a doc link upwards is documentation, not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type ModPath = Vec<String>;

/// The crate's modules: each one's source (without tests and comments).
struct Crate {
    modules: BTreeMap<ModPath, String>,
}

/// One reference from a module to another, and the text that made it.
#[derive(Debug, Clone)]
struct Edge {
    from: ModPath,
    to: ModPath,
    evidence: String,
}

impl Edge {
    /// The depth of the parent the edge's ends share, when they are siblings (or below
    /// siblings); `None` for a parent and its child, which is not an edge between layers.
    fn between_siblings(&self) -> Option<usize> {
        let common = self
            .from
            .iter()
            .zip(&self.to)
            .take_while(|(a, b)| a == b)
            .count();
        (common < self.from.len() && common < self.to.len()).then_some(common)
    }
}

impl Crate {
    /// Reads `src/` (without `src/bin`).
    fn read(src: &Path) -> Crate {
        let mut files = BTreeMap::new();
        collect(src, src, &mut files);
        Crate::from_files(files)
    }

    /// From file paths relative to `src/` (`lib.rs`, `a/mod.rs`, `a/b.rs`) and their text.
    fn from_files(files: BTreeMap<String, String>) -> Crate {
        let modules = files
            .into_iter()
            .map(|(path, text)| (module_path(&path), strip(&text)))
            .collect();
        Crate { modules }
    }

    fn children(&self, parent: &[String]) -> BTreeSet<String> {
        self.modules
            .keys()
            .filter(|m| m.len() == parent.len() + 1 && m.starts_with(parent))
            .map(|m| m[parent.len()].clone())
            .collect()
    }

    /// The module `segments` (a path from `base`) lands in: as far as the segments name
    /// modules, then through the re-exports (`pub use`) of the module reached.
    fn resolve(&self, base: &[String], segments: &[String], depth: usize) -> ModPath {
        let mut current: ModPath = base.to_vec();
        for (i, segment) in segments.iter().enumerate() {
            if self.children(&current).contains(segment) {
                current.push(segment.clone());
                continue;
            }
            if depth < 8 {
                if let Some((from, path)) = self.reexport(&current, segment) {
                    let mut path = path;
                    path.extend(segments[i + 1..].iter().cloned());
                    return self.resolve(&from, &path, depth + 1);
                }
            }
            break;
        }
        current
    }

    /// Where module `module` re-exports `name` from: the base to resolve from and the path.
    fn reexport(&self, module: &[String], name: &str) -> Option<(ModPath, Vec<String>)> {
        let text = self.modules.get(module)?;
        for statement in text.split(';') {
            let statement = statement.trim();
            let Some(rest) = ["pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .find_map(|p| statement.rsplit_once(p).map(|(_, r)| r))
            else {
                continue;
            };
            for path in expand(rest) {
                let last = path.last().map(String::as_str);
                let alias = path_alias(&path);
                if alias.as_deref().or(last) != Some(name) {
                    continue;
                }
                let path: Vec<String> = path
                    .into_iter()
                    .map(|s| s.split(" as ").next().unwrap_or("").trim().to_owned())
                    .collect();
                return match path.first().map(String::as_str) {
                    Some("crate") => Some((Vec::new(), path[1..].to_vec())),
                    Some("super") => {
                        Some((module[..module.len() - 1].to_vec(), path[1..].to_vec()))
                    }
                    Some("self") => Some((module.to_vec(), path[1..].to_vec())),
                    Some(first) if self.children(module).contains(first) => {
                        Some((module.to_vec(), path))
                    }
                    _ => None,
                };
            }
        }
        None
    }

    /// Every reference from one module to another.
    fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (module, text) in &self.modules {
            for (prefix, base) in [
                ("crate::", Vec::new()),
                ("super::", module[..module.len().saturating_sub(1)].to_vec()),
            ] {
                let mut at = 0;
                while let Some(found) = text[at..].find(prefix) {
                    let start = at + found;
                    at = start + prefix.len();
                    let before = text[..start].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    let (rest, end) = take_path(&text[at..]);
                    for path in expand(rest) {
                        let segments: Vec<String> = path
                            .iter()
                            .map(|s| s.split(" as ").next().unwrap_or("").trim().to_owned())
                            .filter(|s| !s.is_empty() && s != "self" && s != "*")
                            .collect();
                        let to = self.resolve(&base, &segments, 0);
                        if &to != module {
                            edges.push(Edge {
                                from: module.clone(),
                                to,
                                evidence: format!("{prefix}{}", &text[at..at + end]),
                            });
                        }
                    }
                }
            }
        }
        edges
    }

    /// Every circle among siblings, as the edges that make it.
    fn circles(&self) -> Vec<Vec<Edge>> {
        // Sibling graphs, by parent.
        let mut graphs: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, Edge>>> =
            BTreeMap::new();
        for edge in self.edges() {
            let Some(common) = edge.between_siblings() else {
                continue;
            };
            let parent = edge.from[..common].to_vec();
            graphs
                .entry(parent)
                .or_default()
                .entry(edge.from[common].clone())
                .or_default()
                .entry(edge.to[common].clone())
                .or_insert(edge);
        }
        let mut circles = Vec::new();
        for graph in graphs.values() {
            if let Some(circle) = find_circle(graph) {
                circles.push(circle);
            }
        }
        circles
    }
}

/// A circle in `graph`, if there is one (depth-first search).
fn find_circle(graph: &BTreeMap<String, BTreeMap<String, Edge>>) -> Option<Vec<Edge>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, Edge>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<Edge>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut names = stack[at..].to_vec();
            names.push(node.to_owned());
            return Some(
                names
                    .windows(2)
                    .map(|w| graph[&w[0]][&w[1]].clone())
                    .collect(),
            );
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(circle) = visit(next, graph, done, stack) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// The path text at the start of `text` (`a::b::C`, `a::{b, c::D}`): the text and its length.
fn take_path(text: &str) -> (&str, usize) {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => {
                return (&text[..i], i)
            }
            _ => {}
        }
    }
    (text, text.len())
}

/// `a::{b, c::{d, e as f}}` as the paths it names: `[a, b]`, `[a, c, d]`, `[a, c, e as f]`.
fn expand(text: &str) -> Vec<Vec<String>> {
    let text = text.trim();
    match text.find('{') {
        None => vec![text
            .split("::")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()],
        Some(open) => {
            let head: Vec<String> = text[..open]
                .split("::")
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            let inner = &text[open + 1..text.rfind('}').unwrap_or(text.len())];
            let mut parts = Vec::new();
            let (mut depth, mut start) = (0usize, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    ',' if depth == 0 => {
                        parts.push(&inner[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            parts.push(&inner[start..]);
            parts
                .into_iter()
                .filter(|p| !p.trim().is_empty())
                .flat_map(expand)
                .map(|tail| head.iter().cloned().chain(tail).collect())
                .collect()
        }
    }
}

/// The name a `use` path is imported as: `x as y` gives `y`.
fn path_alias(path: &[String]) -> Option<String> {
    let last = path.last()?;
    last.split_once(" as ")
        .map(|(_, alias)| alias.trim().to_owned())
}

/// `a/b.rs` → `[a, b]`, `a/mod.rs` → `[a]`, `lib.rs` → `[]`.
fn module_path(file: &str) -> ModPath {
    let file = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = file.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source without comments and without the `#[cfg(test)]` module that ends a file.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            if relative != "bin" {
                collect(root, &path, files);
            }
        } else if relative.ends_with(".rs") {
            files.insert(relative, std::fs::read_to_string(&path).unwrap());
        }
    }
}

fn describe(circle: &[Edge]) -> String {
    circle
        .iter()
        .map(|e| {
            format!(
                "  {} -> {}  ({})",
                e.from.join("::"),
                e.to.join("::"),
                e.evidence
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module tree `docs/architecture.md` documents under "gp-host's layers", siblings from
/// the bottom up: each module's path, and its place among its siblings.
struct Documented {
    order: BTreeMap<ModPath, usize>,
}

impl Documented {
    /// Reads the first fenced block after the heading: a line `name/` or `name` starts an
    /// entry (two spaces of indentation per level), whatever follows it is its description.
    fn parse(doc: &str) -> Documented {
        let section = doc
            .split_once("## gp-host's layers")
            .expect("docs/architecture.md has a section \"gp-host's layers\"")
            .1;
        let block = section
            .split_once("```")
            .and_then(|(_, rest)| rest.split_once('\n'))
            .and_then(|(_, rest)| rest.split_once("```"))
            .expect("the section holds a fenced block")
            .0;
        let mut order = BTreeMap::new();
        let mut stack: Vec<String> = Vec::new();
        let mut counts: BTreeMap<ModPath, usize> = BTreeMap::new();
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let indent = line.len() - line.trim_start().len();
            assert!(
                indent % 2 == 0,
                "odd indentation in the layers block: {line:?}"
            );
            let name = line
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/');
            stack.truncate(indent / 2);
            let parent = stack.clone();
            stack.push(name.to_owned());
            let place = counts.entry(parent).or_default();
            order.insert(stack.clone(), *place);
            *place += 1;
        }
        Documented { order }
    }

    /// Edges that go up the documented order (or sideways to a sibling listed later).
    fn upward<'e>(&self, edges: &'e [Edge]) -> Vec<&'e Edge> {
        edges
            .iter()
            .filter(|edge| {
                let Some(common) = edge.between_siblings() else {
                    return false;
                };
                let place = |path: &[String]| self.order.get(&path[..=common]).copied();
                match (place(&edge.from), place(&edge.to)) {
                    (Some(from), Some(to)) => to > from,
                    _ => false, // undocumented: reported by the tree check
                }
            })
            .collect()
    }
}

fn architecture_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/architecture.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_documented_tree_names_every_module_and_nothing_else() {
    let krate = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let documented = Documented::parse(&architecture_doc());
    let real: BTreeSet<ModPath> = krate
        .modules
        .keys()
        .filter(|m| !m.is_empty())
        .cloned()
        .collect();
    let listed: BTreeSet<ModPath> = documented.order.keys().cloned().collect();
    let show = |set: BTreeSet<&ModPath>| {
        set.iter()
            .map(|m| m.join("::"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing: BTreeSet<&ModPath> = real.difference(&listed).collect();
    let stale: BTreeSet<&ModPath> = listed.difference(&real).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/architecture.md's layers and src/ disagree; in src/ only: [{}]; in the doc only: [{}]",
        show(missing),
        show(stale)
    );
}

#[test]
fn gp_host_modules_import_only_downwards() {
    let krate = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        krate.modules.len() > 20,
        "read only {} modules",
        krate.modules.len()
    );
    // The checker sees the real edges (a guard against it silently seeing nothing).
    let edges = krate.edges();
    let top = |e: &Edge, from: &str, to: &str| {
        e.from[0] == from && e.to.first().map(String::as_str) == Some(to)
    };
    for (from, to) in [
        ("manager", "runtime"),
        ("runtime", "metrics"),
        ("watch", "manager"),
        ("source", "folder"),
    ] {
        assert!(
            edges.iter().any(|e| top(e, from, to)),
            "no edge {from} -> {to} found"
        );
    }
    let circles = krate.circles();
    assert!(
        circles.is_empty(),
        "gp-host's modules import each other in a circle; move what the lower module needs down:\n{}",
        circles.iter().map(|c| describe(c)).collect::<Vec<_>>().join("\n\n")
    );
    let documented = Documented::parse(&architecture_doc());
    let upward = documented.upward(&edges);
    assert!(
        upward.is_empty(),
        "these imports go up the order docs/architecture.md gives (bottom up); move what the lower module needs down, or change the documented order if the design changed:\n{}",
        upward
            .iter()
            .map(|e| describe(std::slice::from_ref(*e)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_documented_order_is_read_and_enforced() {
    let documented = Documented::parse(
        "## gp-host's layers\n\ntext\n\n```text\nlow     the bottom\nhigh/   above it\n  a     one\n  b     two\n```\n",
    );
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<ModPath>();
    assert_eq!(documented.order[&path(&["low"])], 0);
    assert_eq!(documented.order[&path(&["high", "b"])], 1);
    let edge = |from: &[&str], to: &[&str]| Edge {
        from: path(from),
        to: path(to),
        evidence: String::new(),
    };
    let edges = [
        edge(&["high", "b"], &["high", "a"]),
        edge(&["high", "a"], &["high", "b"]),
        edge(&["high", "a"], &["low"]),
        edge(&["low"], &["high", "b"]),
    ];
    let upward: Vec<String> = documented
        .upward(&edges)
        .iter()
        .map(|e| format!("{} -> {}", e.from.join("::"), e.to.join("::")))
        .collect();
    assert_eq!(upward, ["high::a -> high::b", "low -> high::b"]);
}

fn synthetic(files: &[(&str, &str)]) -> Crate {
    Crate::from_files(
        files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect(),
    )
}

#[test]
fn finds_a_circle_made_by_an_inline_path_through_a_reexport() {
    let krate = synthetic(&[
        ("lib.rs", "mod high; mod low;\npub use high::Manager;\n"),
        ("high.rs", "use crate::low::helper;\npub struct Manager;\n"),
        (
            "low.rs",
            "pub fn helper() { let _ = crate::Manager::new(); }\n",
        ),
    ]);
    let circles = krate.circles();
    assert_eq!(circles.len(), 1);
    assert_eq!(
        describe(&circles[0]),
        "  high -> low  (crate::low::helper)\n  low -> high  (crate::Manager::new)"
    );
}

#[test]
fn finds_a_circle_among_nested_siblings_through_grouped_imports_and_super() {
    let krate = synthetic(&[
        ("lib.rs", "mod run;\n"),
        ("run/mod.rs", "mod a; mod b;\n"),
        ("run/a.rs", "use crate::{run::b::B, util};\n"),
        ("run/b.rs", "pub struct B;\nfn f() { super::a::g() }\n"),
    ]);
    let circles = krate.circles();
    assert_eq!(circles.len(), 1, "{}", describe(&circles.concat()));
    assert_eq!(circles[0][0].from, ["run", "a"]);
}

#[test]
fn ignores_tests_comments_and_parent_child_references() {
    let krate = synthetic(&[
        ("lib.rs", "mod a; mod b;\npub use a::A;\n"),
        (
            "a/mod.rs",
            "mod c;\npub use c::A;\n/// see [`crate::b::B`]\nfn f() {}\n",
        ),
        (
            "a/c.rs",
            "pub struct A;\nfn g() { super::f() } // crate::b\n",
        ),
        (
            "b.rs",
            "use crate::A;\npub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n",
        ),
    ]);
    assert!(krate.circles().is_empty());
    let edges: Vec<String> = krate
        .edges()
        .iter()
        .map(|e| format!("{} -> {}", e.from.join("::"), e.to.join("::")))
        .collect();
    assert_eq!(edges, ["a::c -> a", "b -> a::c"]);
}
