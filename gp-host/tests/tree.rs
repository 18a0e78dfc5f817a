//! One idea per file, read as `docs/architecture.md` (*Files*) says: no source file of the
//! workspace (Rust, and the GUI's JavaScript and CSS) is over 600 lines, and a function over
//! 100 lines says why in a `// Long:` comment just above it.
//!
//! Source is what `git` would track under the workspace's crates (target directories and
//! hidden folders are skipped); data files and Markdown are not source.

use std::path::{Path, PathBuf};

/// The most lines a source file may have.
const MAX_FILE_LINES: usize = 600;
/// The most lines a function may have without a `// Long:` comment saying why.
const MAX_FUNCTION_LINES: usize = 100;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every source file under `dir`, skipping target directories and hidden folders.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                sources(&path, found);
            }
        } else if ["rs", "js", "css"]
            .iter()
            .any(|ext| path.extension().is_some_and(|e| e == *ext))
        {
            found.push(path);
        }
    }
}

fn workspace_sources() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for member in [
        "gp-core",
        "gp-macros",
        "gp-sdk",
        "gp-host",
        "examples",
        "benches",
    ] {
        sources(&workspace().join(member), &mut found);
    }
    found.sort();
    found
}

/// Functions of `text` (Rust) longer than `max` lines without a `// Long:` comment above:
/// their names, first lines and lengths. A function runs from its `fn` line to the closing
/// brace at the `fn`'s indentation.
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let Some(name) = function_name(code) else {
            continue;
        };
        let Some(open) = (at..lines.len()).find(|&i| {
            let l = lines[i].trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        if !lines[open].trim_end().ends_with('{') {
            continue; // a declaration, or a body on one line
        }
        let close = (open + 1..lines.len()).find(|&i| {
            let l = lines[i];
            l.len() > indent && l[..indent].trim().is_empty() && l[indent..].starts_with('}')
        });
        let Some(close) = close else { continue };
        let length = close - at + 1;
        if length <= max {
            continue;
        }
        let explained = lines[..at]
            .iter()
            .rev()
            .take_while(|l| {
                let l = l.trim_start();
                l.starts_with("//") || l.starts_with("#[")
            })
            .any(|l| l.trim_start().starts_with("// Long:"));
        if !explained {
            found.push((name, at + 1, length));
        }
    }
    found
}

/// The name a line declares a function by (`pub(crate) async fn name(` → `name`).
fn function_name(code: &str) -> Option<String> {
    let mut rest = code;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
        "extern \"C\" ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[test]
fn no_source_file_is_over_600_lines() {
    let files = workspace_sources();
    assert!(files.len() > 100, "found only {} source files", files.len());
    let too_long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("  {} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "one idea per file: these are over {MAX_FILE_LINES} lines; split them along their ideas:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn no_function_is_over_100_lines_without_saying_why() {
    let mut unexplained = Vec::new();
    for path in workspace_sources()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        for (name, line, length) in long_functions(&text, MAX_FUNCTION_LINES) {
            unexplained.push(format!(
                "  {}:{line} {name} ({length} lines)",
                path.display()
            ));
        }
    }
    assert!(
        unexplained.is_empty(),
        "these functions are over {MAX_FUNCTION_LINES} lines: split them, or say why in a `// Long:` comment just above:\n{}",
        unexplained.join("\n")
    );
}

#[test]
fn the_function_check_measures_bodies_and_reads_the_reason() {
    let body = |n: usize| "    let x = 1;\n".repeat(n);
    let text = format!(
        "fn short() {{\n{}}}\n\n/// Docs.\npub(crate) async fn long() {{\n{}}}\n\n// Long: one scenario, read top to bottom.\n#[test]\nfn explained() {{\n{}}}\n\nfn declared();\nfn empty() {{}}\n",
        body(2),
        body(5),
        body(5)
    );
    assert_eq!(long_functions(&text, 4), [("long".to_owned(), 7, 7)]);
}
