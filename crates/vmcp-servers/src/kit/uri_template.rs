//! Matching resource URIs against the simple RFC 6570 templates servers publish
//! (`note://{name}`, `fixture://items/{id}`, `file:///{+path}`).
//!
//! `{var}` matches text without `/`, `?` or `#`; `{+var}` and `{#var}` match anything. A variable
//! ends at the first occurrence of the literal that follows it.

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Var { name: String, any: bool },
}

impl UriTemplate {
    pub fn parse(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let expr = &rest[open + 1..close];
            let any = expr.starts_with(['+', '#']);
            let name = expr.trim_start_matches(['+', '#']).to_owned();
            parts.push(Part::Var { name, any });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Self { parts }
    }

    /// The variables of `uri`, if it matches.
    pub fn matches(&self, uri: &str) -> Option<Vec<(String, String)>> {
        let mut vars = Vec::new();
        let mut rest = uri;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Literal(l) => rest = rest.strip_prefix(l.as_str())?,
                Part::Var { name, any } => {
                    let end = match parts.peek() {
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    if value.is_empty() || (!any && value.contains(['/', '?', '#'])) {
                        return None;
                    }
                    vars.push((name.clone(), value.to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_uris() {
        let cases = [
            ("note://{name}", "note://shopping", Some(vec![("name", "shopping")])),
            ("note://{name}", "note://a/b", None),
            ("note://{name}", "note://", None),
            ("fixture://items/{id}", "fixture://items/42", Some(vec![("id", "42")])),
            ("fixture://items/{id}", "fixture://other/42", None),
            ("file:///{+path}", "file:///a/b.txt", Some(vec![("path", "a/b.txt")])),
            ("x://{a}/{b}.json", "x://p/q.json", Some(vec![("a", "p"), ("b", "q")])),
            ("x://static", "x://static", Some(vec![])),
            ("x://static", "x://static2", None),
        ];
        for (template, uri, want) in cases {
            let want =
                want.map(|v| v.into_iter().map(|(a, b)| (a.to_owned(), b.to_owned())).collect::<Vec<_>>());
            assert_eq!(UriTemplate::parse(template).matches(uri), want, "{template} vs {uri}");
        }
    }
}
