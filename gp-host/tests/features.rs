//! The feature table in `src/lib.rs`'s documentation says what `Cargo.toml` does: the same
//! features, the same defaults, the same features implied by each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A feature as documented or declared: whether it is a default one, and the other features
/// of this crate it turns on.
#[derive(Debug, PartialEq, Eq)]
struct Feature {
    default: bool,
    implies: BTreeSet<String>,
}

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `[features]` of `Cargo.toml`: each feature's list, without optional dependencies
/// (`dep:x`) and dependencies' features (`x/y`).
fn declared(cargo_toml: &str) -> BTreeMap<String, Feature> {
    let section = cargo_toml
        .split_once("\n[features]\n")
        .expect("Cargo.toml has [features]")
        .1;
    let section = section.split("\n[").next().unwrap();
    let mut lists: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in section.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, list) = line.split_once('=').expect("`name = [...]` on one line");
        let list = list.trim().trim_start_matches('[').trim_end_matches(']');
        let items = list
            .split(',')
            .map(|i| i.trim().trim_matches('"').to_owned())
            .filter(|i| !i.is_empty() && !i.starts_with("dep:") && !i.contains('/'))
            .collect();
        lists.insert(name.trim().to_owned(), items);
    }
    let defaults = lists.remove("default").unwrap_or_default();
    lists
        .into_iter()
        .map(|(name, implies)| {
            let default = defaults.contains(&name);
            (name, Feature { default, implies })
        })
        .collect()
}

/// The table in `lib.rs`'s documentation: `| \`name\` | yes/no | what | implies |`, where
/// "every feature above" means every feature listed before the row.
fn documented(lib_rs: &str) -> BTreeMap<String, Feature> {
    let mut table = BTreeMap::new();
    let mut above: Vec<String> = Vec::new();
    for line in lib_rs.lines() {
        let Some(row) = line.strip_prefix("//! | `") else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let name = cells[0].trim_end_matches('`').to_owned();
        let default = match cells[1].trim() {
            "yes" => true,
            "no" => false,
            other => panic!("feature `{name}`: default is {other:?}, not yes or no"),
        };
        let implies_cell = cells.last().unwrap().trim_end_matches('|').trim();
        let implies = if implies_cell == "every feature above" {
            above.iter().cloned().collect()
        } else {
            implies_cell
                .split(',')
                .map(|i| i.trim().trim_matches('`').to_owned())
                .filter(|i| !i.is_empty())
                .collect()
        };
        above.push(name.clone());
        table.insert(name, Feature { default, implies });
    }
    table
}

#[test]
fn the_feature_table_in_lib_rs_matches_cargo_toml() {
    let declared = declared(&read("Cargo.toml"));
    let documented = documented(&read("src/lib.rs"));
    assert!(declared.len() > 8, "read only {declared:?}");
    let names = |m: &BTreeMap<String, Feature>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        names(&documented),
        names(&declared),
        "lib.rs's feature table and Cargo.toml list different features"
    );
    for (name, feature) in &declared {
        assert_eq!(
            &documented[name], feature,
            "feature `{name}`: lib.rs's table (left) says otherwise than Cargo.toml (right)"
        );
    }
}

#[test]
fn the_parsers_read_what_they_compare() {
    let declared = declared(
        "[package]\n\n[features]\ndefault = [\"a\"]\n# a comment\na = [\"dep:x\"]\nb = [\"a\", \"x/y\"]\n\n[dependencies]\nx = \"1\"\n",
    );
    assert_eq!(
        declared["b"],
        Feature {
            default: false,
            implies: ["a".to_owned()].into()
        }
    );
    assert!(declared["a"].default && declared["a"].implies.is_empty());
    let documented =
        documented("//! | `a` | yes | A | |\n//! | `b` | no | B | `a` |\n//! | `c` | no | C | every feature above |\n");
    assert_eq!(documented["c"].implies.len(), 2);
    assert_eq!(documented["b"].implies, ["a".to_owned()].into());
}
