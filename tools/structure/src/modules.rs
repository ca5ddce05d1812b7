//! A crate's module tree, how a path resolves in it, and the import circles between its
//! modules.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::graph::strongly_connected;
use crate::syntax::{
    Echo, Function, Reference, Visitor, flatten_use, is_test_only, item_attrs, item_name,
    module_dir, path_attr,
};

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
pub(crate) struct ModuleTree {
    modules: Vec<Module>,
    pub(crate) functions: Vec<Function>,
    pub(crate) echoes: Vec<Echo>,
}

impl ModuleTree {
    pub(crate) fn load(entry: &Path) -> Result<Self, String> {
        let mut tree = ModuleTree {
            modules: Vec::new(),
            functions: Vec::new(),
            echoes: Vec::new(),
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
                        echoes: Vec::new(),
                        impl_type: None,
                    };
                    visitor.visit_item(other);
                    self.modules[id].references.extend(visitor.references);
                    self.functions.extend(visitor.functions);
                    self.echoes.extend(visitor.echoes);
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
                        // An import of another crate's item is a dependency on the module
                        // that imports it: whoever names it through that module depends
                        // on that module.
                        let Some(resolved) = self.resolve(current, target, depth + 1) else {
                            return Some(current);
                        };
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
    pub(crate) fn cycles(&self) -> Vec<Vec<(PathBuf, PathBuf, usize)>> {
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
