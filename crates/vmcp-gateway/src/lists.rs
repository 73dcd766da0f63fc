//! The four lists (`tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`):
//! fetching a server's full lists for the catalog, and answering a client by fanning out to the
//! backends and merging their pages.
//!
//! Merge order is deterministic: servers in file order, each server's items in its own order.
//! The cursor handed to the client is composite and opaque: for each server that has more, the
//! backend's own `nextCursor`; none is ever dropped. A backend that fails is left out of that
//! page (fail-open) and logged; it never breaks the list for the others.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::join_all;
use vmcp_protocol::splice::{self, Op};
use vmcp_protocol::{ErrorCode, RpcError};

use crate::catalog::ServerItems;
use crate::era;
use crate::gateway::{Gateway, Mounted};
use crate::policy::{Kind, Policy, Subject};
use crate::session::Session;
use crate::upstream::Upstream;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl List {
    pub fn from_method(method: &str) -> Option<Self> {
        Some(match method {
            "tools/list" => Self::Tools,
            "prompts/list" => Self::Prompts,
            "resources/list" => Self::Resources,
            "resources/templates/list" => Self::Templates,
            _ => return None,
        })
    }

    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::Templates => "resources/templates/list",
        }
    }

    /// The array member of the result.
    pub fn key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::Templates => "resourceTemplates",
        }
    }

    /// The member that identifies an item.
    fn id_key(self) -> &'static str {
        match self {
            Self::Tools | Self::Prompts => "name",
            Self::Resources => "uri",
            Self::Templates => "uriTemplate",
        }
    }

    fn capability(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources | Self::Templates => "resources",
        }
    }

    fn policy_kind(self) -> Kind {
        match self {
            Self::Tools => Kind::Tool,
            Self::Prompts => Kind::Prompt,
            Self::Resources | Self::Templates => Kind::Resource,
        }
    }
}

const MAX_PAGES: usize = 1000;

/// Fetch every page of every list the server declares, keeping only the identifying names.
pub async fn fetch_items(up: &Upstream) -> ServerItems {
    let mut items = ServerItems::default();
    let Some(hs) = up.handshake() else { return items };
    for list in [List::Tools, List::Prompts, List::Resources, List::Templates] {
        if hs.has(list.capability())
            && let Err(e) = fetch_list(up, list, &mut items).await
        {
            tracing::warn!(server = %up.id(), "{} failed: {e}", list.method());
        }
    }
    items
}

/// Every page of one list into `items`: the names, and for tools what routing needs to know of
/// them (idempotent, `x-mcp-header` parameters). A list that fails keeps no names.
async fn fetch_list(up: &Upstream, list: List, items: &mut ServerItems) -> Result<(), String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let timeout = std::time::Duration::from_secs_f64(up.spec.timeout_secs);
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => format!(r#"{{"cursor":{}}}"#, splice::quote(c)),
            None => "{}".to_owned(),
        };
        let params = era::to_backend(Some(&params), up, None);
        let reply = up
            .request(up.next_id(), list.method(), params.as_deref(), None, timeout)
            .await
            .map_err(|e| e.to_string())?;
        let result = reply.result.as_deref().map(|r| r.get()).ok_or_else(|| {
            reply.error.as_deref().map_or_else(|| "no result".to_owned(), |e| e.get().to_owned())
        })?;
        let page = ListPage::read(result, list.key());
        for item in page.items.iter().map(|i| i.get()) {
            let Some(name) = splice::get(item, list.id_key()).and_then(splice::as_str) else { continue };
            if list == List::Tools {
                if splice::get_path(item, &["annotations", "idempotentHint"]) == Some("true") {
                    items.idempotent_tools.push(name.clone().into_owned());
                }
                if let Some(headers) = crate::param_headers::from_tool(item) {
                    items.param_headers.insert(name.clone().into_owned(), headers);
                }
            }
            names.push(name.into_owned());
        }
        cursor = page.next_cursor.map(|c| c.into_owned());
        if cursor.is_none() {
            break;
        }
    }
    *match list {
        List::Tools => &mut items.tools,
        List::Prompts => &mut items.prompts,
        List::Resources => &mut items.resources,
        List::Templates => &mut items.templates,
    } = names;
    Ok(())
}

/// Answer a client's list request: fan out, merge, paginate. Returns the result object text.
pub async fn answer(
    gw: &Gateway,
    session: &Session,
    list: List,
    params: Option<&str>,
) -> Result<String, RpcError> {
    let mounts = gw.mounts();
    let wanted: Vec<(usize, Option<String>)> = match params.and_then(|p| splice::get(p, "cursor")) {
        Some(raw) => {
            let cursor = splice::as_str(raw).ok_or_else(|| invalid_cursor("not a string"))?;
            let map = decode_cursor(&cursor)?;
            map.into_iter()
                .filter_map(|(id, c)| {
                    mounts.servers.iter().position(|m| m.spec.id == id).map(|i| (i, Some(c)))
                })
                .collect()
        }
        None => mounts
            .servers
            .iter()
            .enumerate()
            .filter(|(_, m)| m.up().handshake().is_some_and(|h| h.has(list.capability())))
            .map(|(i, _)| (i, None))
            .collect(),
    };
    // A server the caller may not use is never asked (nor is a cursor naming one followed).
    let view = Policy::view(&session.caller);
    let wanted: Vec<(usize, Option<String>)> = wanted
        .into_iter()
        .filter(|(i, _)| {
            let server = &mounts.servers[*i].spec.id;
            view.visible(Subject::server(server))
        })
        .collect();
    let pages = join_all(
        wanted.iter().map(|(i, cursor)| page(&mounts.servers[*i], list, params, cursor.as_deref(), session)),
    )
    .await;
    let mut out = String::with_capacity(
        pages.iter().map(|p| p.as_ref().map_or(0, |p| p.text().len())).sum::<usize>() + 64,
    );
    out.push('{');
    out.push_str(&splice::quote(list.key()));
    out.push_str(":[");
    let mut first = true;
    let mut next = BTreeMap::new();
    // The items are decided as of their answers: a persona change or an expiry while the
    // backends answered applies. One look at the rules for all of them.
    let view = Policy::view(&session.caller);
    for ((i, _), page) in wanted.iter().zip(pages) {
        let Some(page) = page else { continue };
        let m = &mounts.servers[*i];
        // One pass over the page for both members vMCP needs: a page of a thousand tools is
        // half a megabyte.
        let ListPage { items, next_cursor } = ListPage::read(page.text(), list.key());
        for item in items.iter().map(|i| i.get()) {
            let Some(id) = splice::get(item, list.id_key()).and_then(splice::as_str) else { continue };
            if !view.visible(Subject { server: &m.spec.id, kind: list.policy_kind(), name: &id }) {
                continue;
            }
            let exposed = match list {
                List::Tools => mounts.catalog.exposed_tool(*i, &id),
                List::Prompts => mounts.catalog.exposed_prompt(*i, &id),
                List::Resources | List::Templates => Some(id.clone().into_owned()),
            };
            let Some(exposed) = exposed else { continue };
            if !first {
                out.push(',');
            }
            first = false;
            if exposed == id {
                out.push_str(item);
            } else {
                let renamed = splice::edit_object(item, &[("name", Op::Replace(&splice::quote(&exposed)))]);
                out.push_str(renamed.as_deref().unwrap_or(item));
            }
        }
        if let Some(c) = next_cursor {
            next.insert(m.spec.id.clone(), c.into_owned());
        }
    }
    out.push(']');
    if !next.is_empty() {
        out.push_str(",\"nextCursor\":");
        out.push_str(&splice::quote(&encode_cursor(&next)));
    }
    out.push('}');
    Ok(out)
}

/// One backend's answer with a result: the page.
struct Page(vmcp_protocol::Message);

impl Page {
    fn text(&self) -> &str {
        self.0.result.as_deref().map_or("{}", |r| r.get())
    }
}

/// What the merge reads of a page: its items (the member the list names) and its cursor.
#[derive(Default)]
struct ListPage<'a> {
    items: Vec<&'a serde_json::value::RawValue>,
    next_cursor: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> ListPage<'a> {
    /// Both in one pass (a page that is no object reads as empty).
    fn read(text: &'a str, key: &'static str) -> Self {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(text);
        PageSeed(key).deserialize(&mut de).unwrap_or_else(|e| {
            tracing::warn!("a backend's page has no usable `{key}` list ({e}); left out");
            Self::default()
        })
    }
}

struct PageSeed(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed {
    type Value = ListPage<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed {
    type Value = ListPage<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a list result with `{}`", self.0)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut page = ListPage::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.0 {
                page.items = map.next_value()?;
            } else if key == "nextCursor" {
                page.next_cursor = map.next_value()?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(page)
    }
}

/// One backend's page; `None` when it failed (logged).
async fn page(
    m: &Arc<Mounted>,
    list: List,
    client_params: Option<&str>,
    cursor: Option<&str>,
    session: &Session,
) -> Option<Page> {
    let base = client_params.unwrap_or("{}");
    let params = match cursor {
        Some(c) => splice::edit_object(base, &[("cursor", Op::Set(&splice::quote(c)))]),
        None => splice::edit_object(base, &[("cursor", Op::Remove)]),
    }?;
    let params = era::to_backend(Some(&params), &m.up(), Some(session));
    let started = Instant::now();
    let timeout = std::time::Duration::from_secs_f64(m.spec.timeout_secs);
    let reply = m.up().request(m.up().next_id(), list.method(), params.as_deref(), None, timeout).await;
    let ok = matches!(&reply, Ok(r) if r.result.is_some());
    m.stats.record(started.elapsed(), ok);
    match reply {
        Ok(msg) => match msg.result {
            Some(_) => Some(Page(msg)),
            None => {
                let err = msg.error.as_deref().map_or("", |e| e.get());
                tracing::warn!(server = %m.spec.id, "{} failed, left out of the merged list: {err}", list.method());
                m.stats.list_omitted();
                None
            }
        },
        Err(e) => {
            tracing::warn!(server = %m.spec.id, "{} failed, left out of the merged list: {e}", list.method());
            m.stats.list_omitted();
            None
        }
    }
}

fn invalid_cursor(why: &str) -> RpcError {
    RpcError::new(ErrorCode::InvalidParams, format!("invalid cursor: {why}"))
}

/// `vmcp1.` + base64url(JSON object of server id -> backend cursor).
pub fn encode_cursor(next: &BTreeMap<String, String>) -> String {
    let json = serde_json::to_string(next).unwrap_or_default();
    format!("vmcp1.{}", URL_SAFE_NO_PAD.encode(json))
}

pub fn decode_cursor(cursor: &str) -> Result<BTreeMap<String, String>, RpcError> {
    let body = cursor.strip_prefix("vmcp1.").ok_or_else(|| invalid_cursor("not issued by this gateway"))?;
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid_cursor("not base64"))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid_cursor("corrupt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let map = BTreeMap::from([("a".to_owned(), "c1".to_owned()), ("b".to_owned(), "x\"y".to_owned())]);
        assert_eq!(decode_cursor(&encode_cursor(&map)).unwrap(), map);
        for bad in ["", "abc", "vmcp1.!!!", "vmcp1.bm90IGpzb24"] {
            assert_eq!(decode_cursor(bad).unwrap_err().code, -32602, "{bad}");
        }
    }
}
