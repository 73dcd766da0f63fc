//! `MANIFEST.md`: a package's human description, with machine-readable front matter.
//!
//! Front matter is either YAML between `---` lines (a documented subset: `key: value`,
//! `key: [a, b]` and `- item` lists, quotes and `#` comments) or TOML between `+++` lines.
//! The Markdown after it is kept as the package's readme.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{RepoError, Result};
use crate::name::{PackageName, check_version};

/// The validated front matter plus the readme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The Markdown body after the front matter.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub readme: String,
}

impl Manifest {
    /// Parse a whole `MANIFEST.md` and validate it.
    pub fn parse(text: &str) -> Result<Self> {
        let (front, body) = split_front_matter(text)?;
        let mut manifest: Manifest = match front {
            Front::Yaml(yaml) => {
                let map = parse_yaml_subset(yaml)?;
                serde_json::from_value(Value::Object(map)).map_err(|e| bad(format!("front matter: {e}")))?
            }
            Front::Toml(src) => {
                toml::from_str(src).map_err(|e| bad(format!("front matter: {}", e.message())))?
            }
        };
        manifest.readme = body.trim().to_owned();
        manifest.validate()?;
        Ok(manifest)
    }

    /// Check every field; `name` and `version` become path components later.
    pub fn validate(&self) -> Result<()> {
        let who = || self.name.clone();
        PackageName::parse(&self.name).map_err(|e| RepoError::invalid(who(), e.to_string()))?;
        check_version(&self.version).map_err(|e| RepoError::invalid(who(), e.to_string()))?;
        if self.description.trim().is_empty() || self.description.len() > 2000 {
            return Err(RepoError::invalid(who(), "`description` must be 1-2000 characters"));
        }
        if self.tags.len() > 32
            || self.tags.iter().any(|t| t.is_empty() || t.len() > 40 || t.chars().any(char::is_control))
        {
            return Err(RepoError::invalid(who(), "`tags` must be at most 32 tags of 1-40 characters"));
        }
        if let Some(url) = &self.homepage
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(RepoError::invalid(
                who(),
                format!("`homepage` must be an http(s) URL (got `{url}`)"),
            ));
        }
        Ok(())
    }

    /// The title if given, else the name.
    pub fn display_name(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }
}

fn bad(message: String) -> RepoError {
    RepoError::invalid("MANIFEST.md", message)
}

enum Front<'a> {
    Yaml(&'a str),
    Toml(&'a str),
}

fn split_front_matter(text: &str) -> Result<(Front<'_>, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (fence, yaml) in [("---", true), ("+++", false)] {
        let Some(rest) =
            text.strip_prefix(fence).and_then(|r| r.strip_prefix('\n').or_else(|| r.strip_prefix("\r\n")))
        else {
            continue;
        };
        let mut offset = 0;
        for line in rest.split_inclusive('\n') {
            if line.trim_end() == fence {
                let front = &rest[..offset];
                let body = &rest[offset + line.len()..];
                return Ok((if yaml { Front::Yaml(front) } else { Front::Toml(front) }, body));
            }
            offset += line.len();
        }
        return Err(bad(format!("front matter opened with `{fence}` is never closed")));
    }
    Err(bad("must start with front matter between `---` lines (YAML) or `+++` lines (TOML)".into()))
}

/// The YAML subset: flat `key: value` pairs; values are scalars (plain or quoted), flow lists
/// `[a, "b"]`, or block lists of `- item` lines under an empty `key:`. Everything is a string.
pub(crate) fn parse_yaml_subset(src: &str) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    let mut open_list: Option<String> = None;
    for (i, raw_line) in src.lines().enumerate() {
        let line_no = i + 1;
        let line = raw_line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) = trimmed.strip_prefix("- ").or_else(|| (trimmed == "-").then_some("")) {
            let key =
                open_list.as_ref().ok_or_else(|| bad(format!("line {line_no}: list item without a key")))?;
            let value = scalar(item, line_no)?;
            if let Some(Value::Array(items)) = map.get_mut(key) {
                items.push(Value::String(value));
            }
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            return Err(bad(format!("line {line_no}: nested values are not supported")));
        }
        let (key, value) =
            line.split_once(':').ok_or_else(|| bad(format!("line {line_no}: expected `key: value`")))?;
        let key = key.trim().to_owned();
        let value = value.trim();
        open_list = None;
        let parsed = if value.is_empty() || value.starts_with('#') {
            open_list = Some(key.clone());
            Value::Array(Vec::new())
        } else if let Some(inner) = value.strip_prefix('[') {
            let inner = flow_list(inner, line_no)?;
            let items = split_flow(inner).into_iter().filter(|s| !s.trim().is_empty());
            Value::Array(items.map(|s| scalar(s, line_no).map(Value::String)).collect::<Result<_>>()?)
        } else if matches!(value.chars().next(), Some('|' | '>' | '{' | '&' | '*' | '!')) {
            return Err(bad(format!(
                "line {line_no}: block scalars, maps, anchors and tags are not supported"
            )));
        } else {
            Value::String(scalar(value, line_no)?)
        };
        if map.insert(key.clone(), parsed).is_some() {
            return Err(bad(format!("line {line_no}: duplicate key `{key}`")));
        }
    }
    Ok(map)
}

/// The inside of a flow list (`inner` follows the `[`): up to the `]` outside quotes, which
/// may be followed by a ` # comment` only.
fn flow_list(inner: &str, line_no: usize) -> Result<&str> {
    let mut quote = None;
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => {
                let tail = inner[i + 1..].trim();
                if !(tail.is_empty() || tail.starts_with('#')) {
                    return Err(bad(format!("line {line_no}: text after `]`")));
                }
                return Ok(&inner[..i]);
            }
            _ => {}
        }
    }
    Err(bad(format!("line {line_no}: unclosed `[`")))
}

/// Split a flow list's inside on commas outside quotes.
fn split_flow(inner: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None);
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

/// A plain or quoted scalar; a plain one ends at ` #`.
fn scalar(raw: &str, line_no: usize) -> Result<String> {
    let s = raw.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q) {
            let end = inner.rfind(q).ok_or_else(|| bad(format!("line {line_no}: unclosed quote")))?;
            let (body, tail) = (&inner[..end], inner[end + 1..].trim());
            if !(tail.is_empty() || tail.starts_with('#')) {
                return Err(bad(format!("line {line_no}: text after a closing quote")));
            }
            return Ok(if q == '"' { unescape_double(body) } else { body.replace("''", "'") });
        }
    }
    let plain = match s.find(" #") {
        Some(i) => &s[..i],
        None => s,
    };
    Ok(plain.trim().to_owned())
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "---\nname: time\nversion: 2026.10.19 # latest\ndescription: \"Time: and \\\"zones\\\"\"\ntags: [time, 'time zone'] # comment\nlicense: MIT\n---\n# Time\n\nBody.\n";

    #[test]
    fn parses_yaml_front_matter_and_body() {
        let m = Manifest::parse(YAML).unwrap();
        assert_eq!(m.name, "time");
        assert_eq!(m.version, "2026.10.19");
        assert_eq!(m.description, "Time: and \"zones\"");
        assert_eq!(m.tags, ["time", "time zone"]);
        assert_eq!(m.license.as_deref(), Some("MIT"));
        assert_eq!(m.readme, "# Time\n\nBody.");
    }

    #[test]
    fn parses_block_lists_and_toml() {
        let m = Manifest::parse("---\nname: x\nversion: 1.0.0\ndescription: d\ntags:\n  - a\n  - b\n---\n")
            .unwrap();
        assert_eq!(m.tags, ["a", "b"]);
        let t = Manifest::parse(
            "+++\nname = \"@s/x\"\nversion = \"1.0.0\"\ndescription = \"d\"\ntags = [\"a\"]\n+++\nhi",
        )
        .unwrap();
        assert_eq!((t.name.as_str(), t.readme.as_str()), ("@s/x", "hi"));
    }

    #[test]
    fn rejects_malformed_manifests() {
        let cases = [
            ("no front matter", "# just markdown"),
            ("unclosed", "---\nname: x\n"),
            ("missing description", "---\nname: x\nversion: 1.0.0\n---\n"),
            ("hostile name", "---\nname: ../x\nversion: 1.0.0\ndescription: d\n---\n"),
            ("hostile version", "---\nname: x\nversion: 1;rm\ndescription: d\n---\n"),
            ("nested map", "---\nname: x\nmeta:\n  a: b\n---\n"),
            ("duplicate", "---\nname: x\nname: y\n---\n"),
            ("text after a list", "---\nname: x\nversion: 1.0.0\ndescription: d\ntags: [a] b\n---\n"),
            ("bad homepage", "---\nname: x\nversion: 1.0.0\ndescription: d\nhomepage: javascript:x\n---\n"),
        ];
        for (what, text) in cases {
            assert!(Manifest::parse(text).is_err(), "{what} accepted");
        }
    }
}
