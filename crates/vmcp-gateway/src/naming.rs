//! How tool and prompt names are exposed to clients.
//!
//! Scheme: a server's names are exposed as `{prefix}__{name}`, where the prefix defaults to the
//! server id (configurable per server; `""` exposes the backend's bare names). Because the prefix
//! comes from configuration, adding, removing or restarting a server never renames another
//! server's tools. Collisions (two servers exposing the same name) are settled by file order:
//! the first server keeps the name, a later one falls back to `{id}__{name}`; a name that is still
//! taken is left out with a warning, so no name ever routes to two servers.
//!
//! Every tool can also be addressed by `{id}__{name}` and, when only one server has it, by its
//! bare backend name; both aliases resolve to the same target as the exposed name.
//!
//! Invariant: pure functions, no IO. Exposed names keep to the spec's tool-name rules
//! (1-128 characters of `[A-Za-z0-9_.-]`); a longer one is shortened with a stable hash suffix.

use std::collections::HashMap;

use vmcp_config::Naming;

pub const SEPARATOR: &str = "__";
const MAX_NAME: usize = 128;

/// `{prefix}__{name}`, kept within the spec's length limit.
pub fn qualify(prefix: &str, name: &str) -> String {
    fit(format!("{prefix}{SEPARATOR}{name}"))
}

fn fit(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = fnv1a(name.as_bytes());
    let mut cut = MAX_NAME - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash:016x}", &name[..cut])
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

/// The name a server's item is exposed under before collisions are settled.
pub fn preferred(naming: &Naming, name: &str) -> String {
    match naming {
        Naming::Prefixed(prefix) => qualify(prefix, name),
        Naming::Bare => name.to_owned(),
    }
}

/// One server's view for assignment: its id, naming, and item names in backend order.
pub struct Claim<'a> {
    pub id: &'a str,
    pub naming: &'a Naming,
    pub names: Vec<&'a str>,
}

/// The outcome of assigning names across servers.
#[derive(Debug, Default, PartialEq)]
pub struct Assignment {
    /// `exposed[server][i]` is the exposed name of `claims[server].names[i]`, `None` if left out.
    pub exposed: Vec<Vec<Option<String>>>,
    /// Every name a client may use (exposed names and aliases) -> (server, item index).
    pub lookup: HashMap<String, (usize, usize)>,
    /// Human-readable notes on collisions, for the log.
    pub conflicts: Vec<String>,
}

/// Assign exposed names to all servers' items, in server order (the tie-breaker).
pub fn assign(claims: &[Claim<'_>]) -> Assignment {
    let mut out = Assignment::default();
    for (s, claim) in claims.iter().enumerate() {
        let mut names = Vec::with_capacity(claim.names.len());
        for (i, name) in claim.names.iter().enumerate() {
            let first = preferred(claim.naming, name);
            let chosen = if !out.lookup.contains_key(&first) {
                Some(first)
            } else {
                let fallback = qualify(claim.id, name);
                let owner = &out.lookup[&first];
                let owner_id = claims[owner.0].id;
                if out.lookup.contains_key(&fallback) {
                    out.conflicts.push(format!("`{first}` of server `{}` collides with server `{owner_id}` and `{fallback}` is taken too; left out", claim.id));
                    None
                } else {
                    out.conflicts.push(format!(
                        "`{first}` of server `{}` collides with server `{owner_id}`; exposed as `{fallback}`",
                        claim.id
                    ));
                    Some(fallback)
                }
            };
            if let Some(n) = &chosen {
                out.lookup.insert(n.clone(), (s, i));
            }
            names.push(chosen);
        }
        out.exposed.push(names);
    }
    add_aliases(claims, &mut out);
    out
}

/// `{id}__{name}` for every item, and the bare name when only one server has it.
fn add_aliases(claims: &[Claim<'_>], out: &mut Assignment) {
    let mut bare: HashMap<&str, Option<(usize, usize)>> = HashMap::new();
    for (s, claim) in claims.iter().enumerate() {
        for (i, name) in claim.names.iter().enumerate() {
            if out.exposed[s][i].is_none() {
                continue;
            }
            out.lookup.entry(qualify(claim.id, name)).or_insert((s, i));
            bare.entry(name).and_modify(|e| *e = None).or_insert(Some((s, i)));
        }
    }
    for (name, target) in bare {
        if let Some(t) = target {
            out.lookup.entry(name.to_owned()).or_insert(t);
        }
    }
}

/// Servers that have an item with this bare name (for a "did you mean" error).
pub fn candidates(claims: &[Claim<'_>], exposed: &Assignment, bare: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (s, claim) in claims.iter().enumerate() {
        for (i, name) in claim.names.iter().enumerate() {
            if *name == bare
                && let Some(n) = &exposed.exposed[s][i]
            {
                out.push(n.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
