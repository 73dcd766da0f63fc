//! The routing index: which server owns each tool, prompt, resource and resource template.
//!
//! Built from every mounted server's full lists (fetched at mount and again on `list_changed`),
//! as an immutable snapshot that request handlers read without locking.
//!
//! Invariant: the catalog does no IO; each name or URI resolves to at most one server.

use std::collections::HashMap;

use vmcp_config::Naming;

use crate::naming::{self, Assignment, Claim};
use crate::uri_template::UriTemplate;

/// The names one server published, in its own order.
#[derive(Debug, Clone, Default)]
pub struct ServerItems {
    pub tools: Vec<String>,
    pub prompts: Vec<String>,
    pub resources: Vec<String>,
    pub templates: Vec<String>,
    /// Tools annotated `idempotentHint: true`: safe to retry on another replica.
    pub idempotent_tools: Vec<String>,
    /// Tools with `x-mcp-header` parameters (SEP-2243), by the server's own name.
    pub param_headers: HashMap<String, crate::param_headers::ToolHeaders>,
}

/// One server as the catalog sees it.
pub struct Entry<'a> {
    pub id: &'a str,
    pub naming: &'a Naming,
    pub items: &'a ServerItems,
}

/// A resolved tool or prompt: the server (index in catalog order) and its own name for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    pub server: usize,
    pub name: &'a str,
    pub exposed: &'a str,
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum Miss {
    Unknown,
    /// A bare name that several servers have; the client must pick one of these.
    Ambiguous(Vec<String>),
}

#[derive(Debug, Default)]
struct Names {
    assignment: Assignment,
    /// `original[server][i]`
    original: Vec<Vec<String>>,
    /// Per server: original name -> exposed name.
    by_original: Vec<HashMap<String, String>>,
}

impl Names {
    fn build(entries: &[Entry<'_>], pick: impl Fn(&ServerItems) -> &Vec<String>) -> Self {
        let claims: Vec<Claim<'_>> = entries
            .iter()
            .map(|e| Claim {
                id: e.id,
                naming: e.naming,
                names: pick(e.items).iter().map(String::as_str).collect(),
            })
            .collect();
        let assignment = naming::assign(&claims);
        for c in &assignment.conflicts {
            tracing::warn!("name collision: {c}");
        }
        let original: Vec<Vec<String>> = entries.iter().map(|e| pick(e.items).clone()).collect();
        let by_original = original
            .iter()
            .zip(&assignment.exposed)
            .map(|(names, exposed)| {
                names
                    .iter()
                    .zip(exposed)
                    .filter_map(|(n, x)| x.as_ref().map(|x| (n.clone(), x.clone())))
                    .collect()
            })
            .collect();
        Self { assignment, original, by_original }
    }

    fn resolve<'a>(&'a self, name: &'a str) -> Result<Target<'a>, Miss> {
        if let Some(&(s, i)) = self.assignment.lookup.get(name) {
            let exposed = self.assignment.exposed[s][i].as_deref().unwrap_or(name);
            return Ok(Target { server: s, name: &self.original[s][i], exposed });
        }
        let mut candidates = Vec::new();
        for (s, names) in self.original.iter().enumerate() {
            for (i, n) in names.iter().enumerate() {
                if n == name
                    && let Some(x) = &self.assignment.exposed[s][i]
                {
                    candidates.push(x.clone());
                }
            }
        }
        if candidates.len() > 1 { Err(Miss::Ambiguous(candidates)) } else { Err(Miss::Unknown) }
    }
}

/// The immutable routing index over all mounted servers (in file order).
#[derive(Debug, Default)]
pub struct Catalog {
    ids: Vec<String>,
    namings: Vec<Naming>,
    tools: Names,
    prompts: Names,
    resources: HashMap<String, usize>,
    /// The other servers that list a resource some earlier server lists too, in file order.
    more_owners: HashMap<String, Vec<usize>>,
    templates: Vec<(usize, UriTemplate)>,
    /// URI scheme -> the one server whose resources use it (`None` when several do).
    schemes: HashMap<String, Option<usize>>,
}

impl Catalog {
    pub fn build(entries: &[Entry<'_>]) -> Self {
        let mut resources: HashMap<String, usize> = HashMap::new();
        let mut more_owners: HashMap<String, Vec<usize>> = HashMap::new();
        let mut schemes: HashMap<String, Option<usize>> = HashMap::new();
        let mut templates = Vec::new();
        for (s, e) in entries.iter().enumerate() {
            for uri in &e.items.resources {
                if let Some(&prev) = resources.get(uri) {
                    let first: &str = entries[prev].id;
                    tracing::warn!(
                        "resource `{uri}` is offered by `{first}` and `{}`; routed to the first the caller may use",
                        e.id
                    );
                    more_owners.entry(uri.clone()).or_default().push(s);
                } else {
                    resources.insert(uri.clone(), s);
                }
            }
            for t in &e.items.templates {
                templates.push((s, UriTemplate::parse(t)));
            }
            for uri in e.items.resources.iter().chain(&e.items.templates) {
                if let Some(scheme) = scheme(uri) {
                    schemes
                        .entry(scheme.to_owned())
                        .and_modify(|o| {
                            if *o != Some(s) {
                                *o = None
                            }
                        })
                        .or_insert(Some(s));
                }
            }
        }
        // Most specific template first; ties keep file order (stable sort).
        templates.sort_by_key(|(_, t)| std::cmp::Reverse(t.specificity()));
        Self {
            ids: entries.iter().map(|e| e.id.to_owned()).collect(),
            namings: entries.iter().map(|e| e.naming.clone()).collect(),
            tools: Names::build(entries, |i| &i.tools),
            prompts: Names::build(entries, |i| &i.prompts),
            resources,
            more_owners,
            templates,
            schemes,
        }
    }

    pub fn server_ids(&self) -> &[String] {
        &self.ids
    }

    pub fn tool<'a>(&'a self, name: &'a str) -> Result<Target<'a>, Miss> {
        self.tools.resolve(name)
    }

    pub fn prompt<'a>(&'a self, name: &'a str) -> Result<Target<'a>, Miss> {
        self.prompts.resolve(name)
    }

    /// The name a server's tool is exposed under (also for tools added since the last refresh).
    pub fn exposed_tool(&self, server: usize, original: &str) -> Option<String> {
        self.exposed(&self.tools, server, original)
    }

    pub fn exposed_prompt(&self, server: usize, original: &str) -> Option<String> {
        self.exposed(&self.prompts, server, original)
    }

    fn exposed(&self, names: &Names, server: usize, original: &str) -> Option<String> {
        if let Some(x) = names.by_original.get(server).and_then(|m| m.get(original)) {
            return Some(x.clone());
        }
        // Not in the last refresh: use the preferred name unless another server holds it.
        let preferred = naming::preferred(self.namings.get(server)?, original);
        match names.assignment.lookup.get(&preferred) {
            Some((s, _)) if *s != server => None,
            _ => Some(preferred),
        }
    }

    /// The server that owns `uri`: a server that lists it, else the most specific matching
    /// template, else the only server whose resources use the URI's scheme.
    pub fn resource_owner(&self, uri: &str) -> Option<usize> {
        self.resource_owner_for(uri, |_| true)
    }

    /// Like [`Catalog::resource_owner`], for a caller who may use only some servers: the first
    /// candidate (in that order) for which `may_use` holds, else the first candidate (whose
    /// refusal the caller then gets). So a URI that two servers serve reaches the one the
    /// caller's persona allows.
    pub fn resource_owner_for(&self, uri: &str, may_use: impl Fn(usize) -> bool) -> Option<usize> {
        let listed = self.resources.get(uri).copied().into_iter();
        let listed = listed.chain(self.more_owners.get(uri).into_iter().flatten().copied());
        let templated = self.templates.iter().filter(|(_, t)| t.matches(uri)).map(|(s, _)| *s);
        let by_scheme = scheme(uri).and_then(|sc| self.schemes.get(sc).copied().flatten());
        let mut first = None;
        for s in listed.chain(templated).chain(by_scheme) {
            if may_use(s) {
                return Some(s);
            }
            first.get_or_insert(s);
        }
        first
    }
}

fn scheme(uri: &str) -> Option<&str> {
    let i = uri.find(':')?;
    let s = &uri[..i];
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(tools: &[&str], resources: &[&str], templates: &[&str]) -> ServerItems {
        ServerItems {
            tools: tools.iter().map(|s| s.to_string()).collect(),
            prompts: vec![],
            resources: resources.iter().map(|s| s.to_string()).collect(),
            templates: templates.iter().map(|s| s.to_string()).collect(),
            idempotent_tools: vec![],
            param_headers: HashMap::new(),
        }
    }

    #[test]
    fn resolves_names_and_resources() {
        let (na, nb) = (Naming::Prefixed("a".into()), Naming::Bare);
        let ia = items(&["echo"], &["test://static/resource/1"], &["test://static/resource/{id}"]);
        let ib = items(&["echo", "now"], &["time://now"], &["file:///{+path}"]);
        let cat = Catalog::build(&[
            Entry { id: "a", naming: &na, items: &ia },
            Entry { id: "b", naming: &nb, items: &ib },
        ]);
        type Want<'a> = Result<(usize, &'a str), Miss>;
        let cases: [(&str, Want); 5] = [
            ("a__echo", Ok((0, "echo"))),
            ("echo", Ok((1, "echo"))),
            ("now", Ok((1, "now"))),
            ("b__now", Ok((1, "now"))),
            ("nope", Err(Miss::Unknown)),
        ];
        for (name, want) in cases {
            assert_eq!(cat.tool(name).map(|t| (t.server, t.name)), want, "{name}");
        }
        assert_eq!(cat.resource_owner("test://static/resource/1"), Some(0));
        assert_eq!(cat.resource_owner("test://static/resource/99"), Some(0));
        assert_eq!(cat.resource_owner("file:///tmp/x"), Some(1));
        assert_eq!(cat.resource_owner("time://later"), Some(1));
        assert_eq!(cat.resource_owner("zzz://x"), None);
        assert_eq!(cat.exposed_tool(0, "new_tool").as_deref(), Some("a__new_tool"));
        assert_eq!(cat.exposed_tool(1, "now").as_deref(), Some("now"));
    }

    #[test]
    fn ambiguous_bare_names_list_the_candidates() {
        let (na, nb) = (Naming::Prefixed("a".into()), Naming::Prefixed("b".into()));
        let i = items(&["echo"], &[], &[]);
        let cat = Catalog::build(&[
            Entry { id: "a", naming: &na, items: &i },
            Entry { id: "b", naming: &nb, items: &i },
        ]);
        assert_eq!(cat.tool("echo"), Err(Miss::Ambiguous(vec!["a__echo".into(), "b__echo".into()])));
    }

    #[test]
    fn a_shared_resource_resolves_to_the_first_server_the_caller_may_use() {
        let (na, nb, nc) = (Naming::Bare, Naming::Bare, Naming::Bare);
        let shared = items(&[], &["f://x"], &["f://items/{id}"]);
        let c = items(&[], &["f://x"], &[]);
        let cat = Catalog::build(&[
            Entry { id: "a", naming: &na, items: &shared },
            Entry { id: "b", naming: &nb, items: &shared },
            Entry { id: "c", naming: &nc, items: &c },
        ]);
        // (uri, servers the caller may use, owner)
        let cases: [(&str, &[usize], Option<usize>); 7] = [
            ("f://x", &[0, 1, 2], Some(0)),
            ("f://x", &[1], Some(1)),
            ("f://x", &[2], Some(2)),
            ("f://x", &[], Some(0)),
            ("f://items/7", &[1, 2], Some(1)),
            ("f://items/7", &[2], Some(0)),
            ("g://nothing", &[0], None),
        ];
        for (uri, may, want) in cases {
            assert_eq!(cat.resource_owner_for(uri, |s| may.contains(&s)), want, "{uri} {may:?}");
        }
        assert_eq!(cat.resource_owner("f://x"), Some(0));
    }
}
