//! The capabilities vMCP announces: an honest merge of what the ready backends declare.
//!
//! Known capabilities are merged by meaning (`tools`, `prompts`, `resources` with `subscribe`,
//! `completions`, `logging`); vMCP always announces `listChanged` for the three lists, since it
//! sends them when servers are mounted or unmounted. Anything else (unknown keys, `experimental`
//! entries, vendor fields) is passed through as the first backend that declares it wrote it.

use vmcp_protocol::splice;

use crate::gateway::Mounts;

const LISTS: [&str; 3] = ["tools", "prompts", "resources"];

pub fn merged(mounts: &Mounts) -> String {
    let caps: Vec<String> = mounts
        .servers
        .iter()
        .filter_map(|m| m.up().handshake())
        .map(|h| h.capabilities.get().to_owned())
        .collect();
    merge(&caps)
}

/// Merge raw capability objects.
pub fn merge(caps: &[String]) -> String {
    let mut out: Vec<(String, String)> = Vec::new();
    let has = |key: &str| caps.iter().any(|c| splice::get(c, key).is_some_and(|v| v != "null"));
    for list in LISTS {
        if has(list) {
            let mut body = String::from("{");
            if list == "resources"
                && caps.iter().any(|c| splice::get_path(c, &["resources", "subscribe"]) == Some("true"))
            {
                body.push_str("\"subscribe\":true,");
            }
            body.push_str("\"listChanged\":true");
            // Unknown members of a list capability pass through (first backend wins).
            let extras = unknown_members(caps, list, &["listChanged", "subscribe"]);
            for (k, v) in extras {
                body.push(',');
                body.push_str(&splice::quote(&k));
                body.push(':');
                body.push_str(&v);
            }
            body.push('}');
            out.push((list.to_owned(), body));
        }
    }
    for simple in ["completions", "logging"] {
        if has(simple) {
            out.push((simple.to_owned(), first(caps, simple).unwrap_or_else(|| "{}".into())));
        }
    }
    if has("experimental") {
        let mut body = String::from("{");
        for (k, v) in unknown_members(caps, "experimental", &[]) {
            if body.len() > 1 {
                body.push(',');
            }
            body.push_str(&splice::quote(&k));
            body.push(':');
            body.push_str(&v);
        }
        body.push('}');
        out.push(("experimental".into(), body));
    }
    // Top-level keys vMCP does not interpret, e.g. `tasks` or a vendor extension.
    let known = ["tools", "prompts", "resources", "completions", "logging", "experimental"];
    for c in caps {
        for m in splice::members(c).unwrap_or_default() {
            if !known.contains(&m.key.as_ref()) && !out.iter().any(|(k, _)| *k == m.key) {
                out.push((m.key.into_owned(), m.value.to_owned()));
            }
        }
    }
    let mut text = String::from("{");
    for (i, (k, v)) in out.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&splice::quote(k));
        text.push(':');
        text.push_str(v);
    }
    text.push('}');
    text
}

fn first(caps: &[String], key: &str) -> Option<String> {
    caps.iter().find_map(|c| splice::get(c, key).filter(|v| *v != "null").map(str::to_owned))
}

fn unknown_members(caps: &[String], key: &str, skip: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in caps {
        let Some(inner) = splice::get(c, key) else { continue };
        for m in splice::members(inner).unwrap_or_default() {
            if !skip.contains(&m.key.as_ref()) && !out.iter().any(|(k, _)| *k == m.key) {
                out.push((m.key.into_owned(), m.value.to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn merges_by_meaning_and_keeps_unknown_keys() {
        let a = r#"{"tools":{"listChanged":false},"logging":{},"x-vendor":{"big":12345678901234567890}}"#
            .to_owned();
        let b = r#"{"resources":{"subscribe":true},"prompts":{},"experimental":{"foo":{"v":1.50}},"completions":{}}"#.to_owned();
        let got = merge(&[a, b]);
        let want = r#"{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"completions":{},"logging":{},"experimental":{"foo":{"v":1.50}},"x-vendor":{"big":12345678901234567890}}"#;
        assert_eq!(got, want);
        assert_eq!(merge(&[]), "{}");
        let no_sub = merge(&[r#"{"resources":{}}"#.to_owned()]);
        assert_eq!(no_sub, r#"{"resources":{"listChanged":true}}"#);
    }
}
