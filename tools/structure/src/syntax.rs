//! What syn gives: the items of a module, test-only code, and the paths and functions inside
//! an item.

use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

/// A function and its length, from its signature to its closing brace.
pub(crate) struct Function {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) name: String,
    pub(crate) lines: usize,
}

/// One use of a path: what it names, where, and whether it is an import of that name.
pub(crate) struct Reference {
    pub(crate) path: Vec<String>,
    pub(crate) line: usize,
}

/// Where the files of a module's children live.
pub(crate) fn module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let is_root = matches!(stem, "lib" | "main" | "mod") || parent.ends_with("src/bin");
    if is_root { parent } else { parent.join(stem) }
}

pub(crate) fn flatten_use(
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

pub(crate) fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
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

pub(crate) fn item_name(item: &syn::Item) -> Option<String> {
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
pub(crate) fn is_test_only(attrs: &[syn::Attribute]) -> bool {
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

pub(crate) fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
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
pub(crate) struct Visitor {
    pub(crate) file: PathBuf,
    pub(crate) references: Vec<Reference>,
    pub(crate) functions: Vec<Function>,
    pub(crate) echoes: Vec<Echo>,
    pub(crate) impl_type: Option<String>,
}

/// A field whose doc comment only repeats its name (`/// Its namespace.` on `namespace`).
pub(crate) struct Echo {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) field: String,
    pub(crate) doc: String,
}

/// Words that carry nothing in a field's doc: `/// The name.` and `/// Its name.` both say
/// `name`.
const EMPTY_WORDS: [&str; 11] = [
    "the", "its", "a", "an", "of", "this", "that", "their", "it", "s", "is",
];

/// The words of `text`, lowercased, without the empty ones.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|w| !w.is_empty() && !EMPTY_WORDS.contains(&w.as_str()))
        .collect()
}

/// The doc comment of `attrs`, its lines joined.
fn doc_of(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }),
                ..
            }) => Some(s.value().trim().to_string()),
            _ => None,
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// Whether `doc` says nothing but `name`.
pub(crate) fn is_echo(name: &str, doc: &str) -> bool {
    let said = words(doc);
    !said.is_empty() && said == words(name)
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
    fn visit_field(&mut self, field: &'ast syn::Field) {
        if let (Some(ident), Some(doc)) = (&field.ident, doc_of(&field.attrs)) {
            let name = ident.to_string();
            if is_echo(&name, &doc) {
                self.echoes.push(Echo {
                    file: self.file.clone(),
                    line: ident.span().start().line,
                    field: name,
                    doc,
                });
            }
        }
        syn::visit::visit_field(self, field);
    }

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
