//! Matching resource URIs against RFC 6570 URI templates, to route `resources/read` for URIs
//! that no list named (e.g. `file:///{path}`).
//!
//! Supported: literal text, `{var}` (no `/`, `?` or `#`), `{+var}` and `{#var}` (anything),
//! `{/var}` (path segments), `{?a,b}` and `{&a}` (the rest of a query). That covers the templates
//! MCP servers publish; anything else is treated as "matches any text".

/// A parsed template.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    parts: Vec<Part>,
    /// Total literal length: the more literal text, the more specific the match.
    literal_len: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// A variable that may not contain these bytes.
    Var {
        stop: &'static [u8],
    },
}

impl UriTemplate {
    pub fn parse(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                parts.push(Part::Literal(rest[open..].to_owned()));
                rest = "";
                break;
            };
            let expr = &rest[open + 1..open + close];
            let stop: &'static [u8] = match expr.as_bytes().first() {
                Some(b'+' | b'#') => b"",
                Some(b'/') => b"?#",
                Some(b'?' | b'&') => b"#",
                Some(b'.') => b"/?#",
                _ => b"/?#",
            };
            if expr.starts_with('/') {
                parts.push(Part::Literal("/".into()));
            }
            parts.push(Part::Var { stop });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        let literal_len = parts.iter().map(|p| if let Part::Literal(l) = p { l.len() } else { 0 }).sum();
        Self { parts, literal_len }
    }

    pub fn specificity(&self) -> usize {
        self.literal_len
    }

    pub fn matches(&self, uri: &str) -> bool {
        match_parts(&self.parts, uri.as_bytes())
    }
}

fn match_parts(parts: &[Part], s: &[u8]) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((Part::Literal(l), rest)) => s.starts_with(l.as_bytes()) && match_parts(rest, &s[l.len()..]),
        Some((Part::Var { stop }, rest)) => {
            let limit = s.iter().position(|b| stop.contains(b)).unwrap_or(s.len());
            (0..=limit).rev().any(|n| match_parts(rest, &s[n..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UriTemplate;

    #[test]
    fn matches_the_templates_servers_publish() {
        let cases = [
            ("test://static/resource/{id}", "test://static/resource/7", true),
            ("test://static/resource/{id}", "test://static/resource/7/x", false),
            ("file:///{+path}", "file:///home/u/a.txt", true),
            ("fixture://items/{id}", "fixture://items/", true),
            ("note://{name}", "notes://x", false),
            ("repo://{owner}/{repo}/issues{?state,page}", "repo://a/b/issues?state=open", true),
            ("api{/version}/users", "api/v2/users", true),
            ("exact://only", "exact://only", true),
            ("exact://only", "exact://only/more", false),
        ];
        for (template, uri, want) in cases {
            assert_eq!(UriTemplate::parse(template).matches(uri), want, "{template} vs {uri}");
        }
        assert!(
            UriTemplate::parse("a://x/{id}").specificity() > UriTemplate::parse("a://{id}").specificity()
        );
    }
}
