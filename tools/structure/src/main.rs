//! Checks the shape of the workspace, as issue 29 set it:
//!
//! - no import circle between the modules of one crate (an edge runs from the module whose
//!   `use` line, or `crate::`/`super::`/`self::` path, names an item to the module that defines
//!   it; re-exports are followed to the definition);
//! - no function over 80 lines outside tests, benches and examples;
//! - no Rust file over 500 lines.
//!
//! `structure [--root DIR] [--top N]` prints every breach and exits 1 if there is one; `--top N`
//! also lists the N longest functions and files, for whoever is shortening them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use syn::spanned::Spanned;
use syn::visit::Visit;

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

/// Runs the three checks and returns how many breaches it printed.
fn run(root: &Path, top: usize) -> Result<usize, String> {
    let crates = workspace_crates(root)?;
    let mut breaches = 0;
    let mut functions = Vec::new();
    for krate in &crates {
        for entry in crate_roots(krate) {
            let tree = ModuleTree::load(&entry)?;
            for cycle in tree.cycles() {
                breaches += 1;
                println!("import circle in {}:", krate.display());
                for (from, to, line) in cycle {
                    println!("  {} -> {} (line {line})", rel(root, &from), rel(root, &to));
                }
            }
            functions.extend(tree.functions);
        }
    }
    functions.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.file.cmp(&b.file)));
    functions.dedup_by(|a, b| a.file == b.file && a.line == b.line);
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
    let mut files = rust_files(root)?;
    files.sort_by_key(|f| std::cmp::Reverse(f.1));
    for (file, lines) in files.iter().filter(|(_, n)| *n > MAX_FILE_LINES) {
        breaches += 1;
        println!(
            "file over {MAX_FILE_LINES} lines: {} ({lines} lines)",
            rel(root, file)
        );
    }
    if top > 0 {
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
    println!(
        "\nstructure: {} functions and {} files checked, {breaches} breaches",
        functions.len(),
        files.len()
    );
    Ok(breaches)
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The member directories of the workspace, from the root manifest's `members` list.
fn workspace_crates(root: &Path) -> Result<Vec<PathBuf>, String> {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let start = text
        .find("members")
        .ok_or_else(|| format!("{} has no workspace members", manifest.display()))?;
    let list = &text[start..];
    let list = &list[list.find('[').unwrap_or(0) + 1..list.find(']').unwrap_or(list.len())];
    Ok(list
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| root.join(m))
        .collect())
}

/// The library and binary roots of one crate: `src/lib.rs`, `src/main.rs`, `src/bin/*.rs`.
fn crate_roots(krate: &Path) -> Vec<PathBuf> {
    let src = krate.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(dir) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

/// Every `.rs` file under the root with its line count, build output and VCS data left out.
fn rust_files(root: &Path) -> Result<Vec<(PathBuf, usize)>, String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                out.push((path, text.lines().count()));
            }
        }
    }
    Ok(out)
}

/// A function and its length, from its signature to its closing brace.
struct Function {
    file: PathBuf,
    line: usize,
    name: String,
    lines: usize,
}

/// One use of a path: what it names, where, and whether it is an import of that name.
struct Reference {
    path: Vec<String>,
    line: usize,
}

#[derive(Default)]
struct Module {
    file: PathBuf,
    parent: Option<usize>,
    children: HashMap<String, usize>,
    /// Names of the items defined here (modules aside).
    items: HashSet<String>,
    /// `use` imports: the name in scope and the path it stands for.
    imports: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    references: Vec<Reference>,
}

/// The modules of one crate target (test modules left out) and its functions.
struct ModuleTree {
    modules: Vec<Module>,
    functions: Vec<Function>,
}

impl ModuleTree {
    fn load(entry: &Path) -> Result<Self, String> {
        let mut tree = ModuleTree {
            modules: Vec::new(),
            functions: Vec::new(),
        };
        tree.load_file(entry, None, None)?;
        Ok(tree)
    }

    fn load_file(
        &mut self,
        file: &Path,
        parent: Option<usize>,
        name: Option<&str>,
    ) -> Result<(), String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let parsed =
            syn::parse_file(&text).map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
        let dir = module_dir(file);
        let id = self.add_module(file, parent, name);
        self.load_items(id, &parsed.items, &dir)
    }

    fn add_module(&mut self, file: &Path, parent: Option<usize>, name: Option<&str>) -> usize {
        let id = self.modules.len();
        self.modules.push(Module {
            file: file.to_path_buf(),
            parent,
            ..Module::default()
        });
        if let (Some(parent), Some(name)) = (parent, name) {
            self.modules[parent].children.insert(name.to_string(), id);
        }
        id
    }

    /// Records the items of module `id`, whose child modules' files live in `dir`.
    fn load_items(&mut self, id: usize, items: &[syn::Item], dir: &Path) -> Result<(), String> {
        for item in items {
            if is_test_only(item_attrs(item)) {
                continue;
            }
            match item {
                syn::Item::Mod(m) => self.load_child(id, m, dir)?,
                syn::Item::Use(u) => {
                    let mut flat = Vec::new();
                    flatten_use(&u.tree, &mut Vec::new(), &mut flat);
                    let line = u.span().start().line;
                    for (path, name) in flat {
                        match name {
                            Some(name) => {
                                self.modules[id].imports.insert(name, path.clone());
                            }
                            None => self.modules[id].globs.push(path.clone()),
                        }
                        self.modules[id].references.push(Reference { path, line });
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        self.modules[id].items.insert(name);
                    }
                    let file = self.modules[id].file.clone();
                    let mut visitor = Visitor {
                        file,
                        references: Vec::new(),
                        functions: Vec::new(),
                        impl_type: None,
                    };
                    visitor.visit_item(other);
                    self.modules[id].references.extend(visitor.references);
                    self.functions.extend(visitor.functions);
                }
            }
        }
        Ok(())
    }

    fn load_child(&mut self, id: usize, m: &syn::ItemMod, dir: &Path) -> Result<(), String> {
        let name = m.ident.to_string();
        if let Some((_, items)) = &m.content {
            let file = self.modules[id].file.clone();
            let child = self.add_module(&file, Some(id), Some(&name));
            return self.load_items(child, items, &dir.join(&name));
        }
        let file = match path_attr(&m.attrs) {
            Some(path) => dir.join(path),
            None => {
                let flat = dir.join(format!("{name}.rs"));
                if flat.is_file() {
                    flat
                } else {
                    dir.join(&name).join("mod.rs")
                }
            }
        };
        self.load_file(&file, Some(id), Some(&name))
    }

    /// The module that defines what `path`, written in module `from`, names; `None` for other
    /// crates and for names not found.
    fn resolve(&self, from: usize, path: &[String], depth: usize) -> Option<usize> {
        if depth > 16 || path.is_empty() {
            return None;
        }
        let mut current = from;
        for (i, segment) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match segment.as_str() {
                "crate" if i == 0 => current = 0,
                "self" => {}
                "super" => current = self.modules[current].parent?,
                "Self" => return Some(current),
                name => {
                    let module = &self.modules[current];
                    if let Some(&child) = module.children.get(name) {
                        current = child;
                        continue;
                    }
                    if module.items.contains(name) {
                        return Some(current);
                    }
                    if let Some(target) = module.imports.get(name) {
                        let resolved = self.resolve(current, target, depth + 1)?;
                        if last || !self.is_module_path(current, target, depth + 1) {
                            return Some(resolved);
                        }
                        current = resolved;
                        continue;
                    }
                    for glob in &module.globs {
                        let mut target = glob.clone();
                        target.push(name.to_string());
                        if let Some(found) = self.resolve(current, &target, depth + 1) {
                            return Some(found);
                        }
                    }
                    // A name the crate does not define: another crate, the prelude, or a
                    // macro's output.
                    return None;
                }
            }
        }
        Some(current)
    }

    /// Whether `path`, written in module `from`, names a module rather than an item.
    fn is_module_path(&self, from: usize, path: &[String], depth: usize) -> bool {
        let Some(parent) = path.len().checked_sub(1).and_then(|n| {
            if n == 0 {
                Some(from)
            } else {
                self.resolve(from, &path[..n], depth)
            }
        }) else {
            return false;
        };
        let last = &path[path.len() - 1];
        match last.as_str() {
            "crate" | "self" | "super" => true,
            name => self.modules[parent].children.contains_key(name),
        }
    }

    /// The import circles: every strongly connected group of more than one module, given as the
    /// edges inside it.
    fn cycles(&self) -> Vec<Vec<(PathBuf, PathBuf, usize)>> {
        let mut edges: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
        for (id, module) in self.modules.iter().enumerate() {
            for reference in &module.references {
                if let Some(target) = self.resolve(id, &reference.path, 0)
                    && target != id
                {
                    edges
                        .entry(id)
                        .or_default()
                        .entry(target)
                        .or_insert(reference.line);
                }
            }
        }
        strongly_connected(self.modules.len(), &edges)
            .into_iter()
            .filter(|group| group.len() > 1)
            .map(|group| {
                let members: BTreeSet<usize> = group.iter().copied().collect();
                let mut inside = Vec::new();
                for &from in &members {
                    for (&to, &line) in edges.get(&from).into_iter().flatten() {
                        if members.contains(&to) {
                            let (a, b) = (&self.modules[from].file, &self.modules[to].file);
                            inside.push((a.clone(), b.clone(), line));
                        }
                    }
                }
                inside
            })
            .collect()
    }
}

/// Tarjan's algorithm, iteratively.
fn strongly_connected(
    n: usize,
    edges: &BTreeMap<usize, BTreeMap<usize, usize>>,
) -> Vec<Vec<usize>> {
    let successors = |v: usize| -> Vec<usize> {
        edges
            .get(&v)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    };
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut groups = Vec::new();
    let mut next = 0;
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        index[start] = next;
        low[start] = next;
        next += 1;
        stack.push(start);
        on_stack[start] = true;
        while let Some((v, i)) = work.pop() {
            let succ = successors(v);
            if i < succ.len() {
                work.push((v, i + 1));
                let w = succ[i];
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            if low[v] == index[v] {
                let mut group = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                groups.push(group);
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
        }
    }
    groups
}

/// Where the files of a module's children live.
fn module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let is_root = matches!(stem, "lib" | "main" | "mod") || parent.ends_with("src/bin");
    if is_root { parent } else { parent.join(stem) }
}

fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            if name == "self" {
                let alias = path.last().cloned();
                out.push((path, alias));
            } else {
                path.push(name.clone());
                out.push((path, Some(name)));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push((path, Some(r.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten_use(tree, prefix, out);
            }
        }
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// `#[cfg(test)]`, `#[test]` or `#[tokio::test]` (and the like).
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let path = a.path();
        if path.is_ident("cfg") {
            let tokens = a
                .meta
                .require_list()
                .map(|l| l.tokens.to_string())
                .unwrap_or_default();
            tokens.trim() == "test"
        } else {
            path.segments.last().is_some_and(|s| s.ident == "test")
        }
    })
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.path().is_ident("path"))
        .and_then(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
}

/// Collects the crate-relative paths and the functions inside one item.
struct Visitor {
    file: PathBuf,
    references: Vec<Reference>,
    functions: Vec<Function>,
    impl_type: Option<String>,
}

impl Visitor {
    fn function(&mut self, attrs: &[syn::Attribute], sig: &syn::Signature, block: &syn::Block) {
        if is_test_only(attrs) {
            return;
        }
        let line = sig.span().start().line;
        let end = block.brace_token.span.close().end().line;
        let name = match &self.impl_type {
            Some(t) => format!("{t}::{}", sig.ident),
            None => sig.ident.to_string(),
        };
        self.functions.push(Function {
            file: self.file.clone(),
            line,
            name,
            lines: end + 1 - line,
        });
    }
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut flat = Vec::new();
        flatten_use(&u.tree, &mut Vec::new(), &mut flat);
        let line = u.span().start().line;
        for (path, _) in flat {
            if matches!(
                path.first().map(String::as_str),
                Some("crate" | "super" | "self")
            ) {
                self.references.push(Reference { path, line });
            }
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        // Paths of one segment name something in scope, which the `use` lines already cover.
        if path.leading_colon.is_none() && segments.len() > 1 {
            let line = path.span().start().line;
            self.references.push(Reference {
                path: segments,
                line,
            });
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if is_test_only(&i.attrs) {
            return;
        }
        let name = match &*i.self_ty {
            syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        let outer = std::mem::replace(&mut self.impl_type, name);
        syn::visit::visit_item_impl(self, i);
        self.impl_type = outer;
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if is_test_only(&f.attrs) {
            return;
        }
        self.function(&f.attrs, &f.sig, &f.block);
        let outer = self.impl_type.take();
        syn::visit::visit_item_fn(self, f);
        self.impl_type = outer;
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_test_only(&f.attrs) {
            return;
        }
        self.function(&f.attrs, &f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.function(&f.attrs, &f.sig, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}
