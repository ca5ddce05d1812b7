//! The check on a small workspace written for the purpose.

use std::path::{Path, PathBuf};

use crate::modules::ModuleTree;

/// A workspace under the system's temporary directory, removed when dropped.
struct Fixture(PathBuf);

impl Fixture {
    fn new(name: &str, files: &[(&str, String)]) -> Self {
        let root = std::env::temp_dir().join(format!("structure-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Fixture(root)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn long_fn(name: &str, lines: usize) -> String {
    format!(
        "pub fn {name}() {{\n{}}}\n",
        "    let _ = 1;\n".repeat(lines - 2)
    )
}

fn circles(root: &Path) -> Vec<Vec<String>> {
    let tree = ModuleTree::load(&root.join("a/src/lib.rs")).unwrap();
    tree.cycles()
        .into_iter()
        .map(|edges| {
            let mut files: Vec<String> = edges
                .iter()
                .map(|(from, _, _)| from.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            files.sort();
            files.dedup();
            files
        })
        .collect()
}

#[test]
fn siblings_that_import_each_other_are_a_circle() {
    let w = Fixture::new(
        "siblings",
        &[
            ("a/src/lib.rs", "mod x;\nmod y;\n".into()),
            ("a/src/x.rs", "use crate::y::Y;\npub struct X(Y);\n".into()),
            (
                "a/src/y.rs",
                "pub struct Y;\npub fn keep(x: crate::x::X) -> crate::x::X { x }\n".into(),
            ),
        ],
    );
    assert_eq!(circles(&w.0), [["x.rs", "y.rs"]]);
}

#[test]
fn a_facade_that_re_exports_is_no_circle_but_a_parent_that_defines_is() {
    // `crate::X` is followed through lib.rs's re-export to x.rs.
    let facade = Fixture::new(
        "facade",
        &[
            ("a/src/lib.rs", "mod x;\nmod z;\npub use x::X;\n".into()),
            ("a/src/x.rs", "pub struct X;\n".into()),
            ("a/src/z.rs", "use crate::X;\npub fn f(_: X) {}\n".into()),
        ],
    );
    assert!(circles(&facade.0).is_empty());
    // A parent that defines what its child imports, and imports the child back.
    let parent = Fixture::new(
        "parent",
        &[
            ("a/src/lib.rs", "mod p;\n".into()),
            (
                "a/src/p/mod.rs",
                "mod c;\npub struct Shared;\npub use c::Child;\n".into(),
            ),
            (
                "a/src/p/c.rs",
                "use super::Shared;\npub struct Child(Shared);\n".into(),
            ),
        ],
    );
    assert_eq!(circles(&parent.0), [["c.rs", "mod.rs"]]);
}

#[test]
fn naming_another_crates_item_through_a_sibling_depends_on_the_sibling() {
    // z.rs takes `Duration` from x.rs, which imports it from std and imports z.rs back.
    let w = Fixture::new(
        "through",
        &[
            ("a/src/lib.rs", "mod x;\nmod z;\n".into()),
            (
                "a/src/x.rs",
                "pub use std::time::Duration;\npub struct X(crate::z::Z);\n".into(),
            ),
            (
                "a/src/z.rs",
                "use crate::x::Duration;\npub struct Z(Duration);\n".into(),
            ),
        ],
    );
    assert_eq!(circles(&w.0), [["x.rs", "z.rs"]]);
}

#[test]
fn long_functions_and_files_are_counted_outside_tests() {
    let mut lib = String::from("mod tests_here;\n");
    lib.push_str(&long_fn("short", 80));
    lib.push_str(&long_fn("long", 81));
    lib.push_str(&format!(
        "#[cfg(test)]\nmod t {{\n{}}}\n",
        long_fn("in_a_test", 120)
    ));
    let w = Fixture::new(
        "lengths",
        &[
            ("Cargo.toml", "[workspace]\nmembers = [\"a\"]\n".into()),
            ("a/src/lib.rs", lib),
            ("a/src/tests_here.rs", "pub fn f() {}\n".repeat(501)),
        ],
    );
    let tree = ModuleTree::load(&w.0.join("a/src/lib.rs")).unwrap();
    let long: Vec<(&str, usize)> = tree
        .functions
        .iter()
        .filter(|f| f.lines > 79)
        .map(|f| (f.name.as_str(), f.lines))
        .collect();
    assert_eq!(long, [("short", 80), ("long", 81)]);
    // One function over the limit and one file over the limit.
    assert_eq!(crate::run(&w.0, 0), Ok(2));
}

#[test]
fn a_doc_that_only_repeats_its_fields_name_is_an_echo() {
    use crate::syntax::is_echo;
    assert!(is_echo("namespace", "Its namespace."));
    assert!(is_echo("last_approval", "The last approval."));
    assert!(is_echo("name", "`name`."));
    assert!(!is_echo(
        "namespace",
        "`metadata.namespace`; `None` for cluster-scoped objects."
    ));
    assert!(!is_echo("name", "A lowercase RFC 1123 subdomain."));
    let w = Fixture::new(
        "echo",
        &[(
            "a/src/lib.rs",
            "pub struct S {\n    /// Its namespace.\n    pub namespace: String,\n    /// Seconds since the grant.\n    pub held: u64,\n}\n"
                .into(),
        )],
    );
    let tree = ModuleTree::load(&w.0.join("a/src/lib.rs")).unwrap();
    let echoes: Vec<(&str, usize)> = tree
        .echoes
        .iter()
        .map(|e| (e.field.as_str(), e.line))
        .collect();
    assert_eq!(echoes, [("namespace", 3)]);
}
