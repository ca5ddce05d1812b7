//! Checks the shape of the workspace, as issue 29 set it:
//!
//! - no import circle between the modules of one crate (an edge runs from the module whose
//!   `use` line, or `crate::`/`super::`/`self::` path, names an item to the module that defines
//!   it; re-exports are followed to the definition);
//! - no function over 80 lines outside tests, benches and examples;
//! - no Rust file over 500 lines;
//! - no field whose doc comment only repeats its name (`/// Its namespace.` on `namespace`).
//!
//! `structure [--root DIR] [--top N]` prints every breach and exits 1 if there is one; `--top N`
//! also lists the N longest functions and files, for whoever is shortening them.

mod graph;
mod modules;
mod syntax;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use modules::ModuleTree;
use syntax::Function;
use workspace::{crate_roots, rust_files, workspace_crates};

const MAX_FUNCTION_LINES: usize = 80;
const MAX_FILE_LINES: usize = 500;

fn main() -> ExitCode {
    let mut root = PathBuf::from(".");
    let mut top = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next().map(PathBuf::from).unwrap_or(root),
            "--top" => top = args.next().and_then(|n| n.parse().ok()).unwrap_or(20),
            other => {
                eprintln!("structure: unknown argument {other:?} (known: --root DIR, --top N)");
                return ExitCode::from(2);
            }
        }
    }
    match run(&root, top) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("structure: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the checks and returns how many breaches it printed.
fn run(root: &Path, top: usize) -> Result<usize, String> {
    let mut breaches = 0;
    let mut functions = Vec::new();
    let mut echoes = Vec::new();
    for krate in &workspace_crates(root)? {
        for entry in crate_roots(krate) {
            let tree = ModuleTree::load(&entry)?;
            breaches += report_cycles(root, krate, &tree);
            functions.extend(tree.functions);
            echoes.extend(tree.echoes);
        }
    }
    functions.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.file.cmp(&b.file)));
    functions.dedup_by(|a, b| a.file == b.file && a.line == b.line);
    echoes.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
    echoes.dedup_by(|a, b| a.file == b.file && a.line == b.line);
    let mut files = rust_files(root)?;
    files.sort_by_key(|f| std::cmp::Reverse(f.1));
    breaches += report_lengths(root, &functions, &files);
    for echo in &echoes {
        breaches += 1;
        println!(
            "doc comment that only repeats its field's name: {}:{} {:?} on {}",
            rel(root, &echo.file),
            echo.line,
            echo.doc,
            echo.field
        );
    }
    if top > 0 {
        report_longest(root, &functions, &files, top);
    }
    println!(
        "\nstructure: {} functions and {} files checked, {breaches} breaches",
        functions.len(),
        files.len()
    );
    Ok(breaches)
}

/// Prints the import circles of one crate target; returns how many.
fn report_cycles(root: &Path, krate: &Path, tree: &ModuleTree) -> usize {
    let cycles = tree.cycles();
    for cycle in &cycles {
        println!("import circle in {}:", krate.display());
        for (from, to, line) in cycle {
            println!("  {} -> {} (line {line})", rel(root, from), rel(root, to));
        }
    }
    cycles.len()
}

/// Prints the functions and files over their limits; returns how many.
fn report_lengths(root: &Path, functions: &[Function], files: &[(PathBuf, usize)]) -> usize {
    let mut breaches = 0;
    for f in functions.iter().filter(|f| f.lines > MAX_FUNCTION_LINES) {
        breaches += 1;
        println!(
            "function over {MAX_FUNCTION_LINES} lines: {}:{} {} ({} lines)",
            rel(root, &f.file),
            f.line,
            f.name,
            f.lines
        );
    }
    for (file, lines) in files.iter().filter(|(_, n)| *n > MAX_FILE_LINES) {
        breaches += 1;
        println!(
            "file over {MAX_FILE_LINES} lines: {} ({lines} lines)",
            rel(root, file)
        );
    }
    breaches
}

/// Lists the `top` longest functions and files.
fn report_longest(root: &Path, functions: &[Function], files: &[(PathBuf, usize)], top: usize) {
    println!("\nlongest functions:");
    for f in functions.iter().take(top) {
        println!(
            "  {:4}  {}:{} {}",
            f.lines,
            rel(root, &f.file),
            f.line,
            f.name
        );
    }
    println!("\nlongest files:");
    for (file, lines) in files.iter().take(top) {
        println!("  {lines:4}  {}", rel(root, file));
    }
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests;
