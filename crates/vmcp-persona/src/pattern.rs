//! Glob patterns for rule targets: `*` matches any run of characters (also none), `?` exactly
//! one character; everything else matches itself. There is no escape: `?` also matches a literal
//! `?` (as in a resource URI's query), and `*` a literal `*`.
//!
//! Invariant: a compiled pattern matches without allocating.

use crate::PersonaError;

/// The longest pattern accepted (resource URIs can be long; rules should not be essays).
pub const MAX_PATTERN_LEN: usize = 1024;

/// A pattern compiled once at load, with fast paths for the common shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: Box<str>,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `*`
    Any,
    /// No wildcard.
    Exact,
    /// `literal*`: the literal is `source[..len - 1]`.
    Prefix,
    /// `*literal`: the literal is `source[1..]`.
    Suffix,
    /// Anything else.
    Glob,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, PersonaError> {
        let bad = |reason| PersonaError::InvalidPattern { pattern: source.to_owned(), reason };
        if source.is_empty() {
            return Err(bad("a pattern cannot be empty"));
        }
        if source.len() > MAX_PATTERN_LEN {
            return Err(bad("a pattern can be at most 1024 bytes"));
        }
        if source.chars().any(char::is_control) {
            return Err(bad("a pattern cannot contain control characters"));
        }
        let wild = |c: char| c == '*' || c == '?';
        let inner = |s: &str| !s.contains(wild);
        let shape = if source == "*" {
            Shape::Any
        } else if inner(source) {
            Shape::Exact
        } else if let Some(lit) = source.strip_suffix('*').filter(|l| inner(l)) {
            debug_assert!(!lit.is_empty());
            Shape::Prefix
        } else if source.strip_prefix('*').is_some_and(inner) {
            Shape::Suffix
        } else {
            Shape::Glob
        };
        Ok(Self { source: source.into(), shape })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Does the whole of `text` match?
    pub fn matches(&self, text: &str) -> bool {
        let s = &*self.source;
        match self.shape {
            Shape::Any => true,
            Shape::Exact => s == text,
            Shape::Prefix => text.starts_with(&s[..s.len() - 1]),
            Shape::Suffix => text.ends_with(&s[1..]),
            Shape::Glob => glob_match(s.as_bytes(), text.as_bytes()),
        }
    }
}

/// Iterative wildcard matching with one backtrack point (linear in practice, no recursion).
/// Both sides are valid UTF-8; `?` and a `*` extension consume whole characters.
fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how far into the text it currently reaches.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                t += char_width(text[t]);
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    let next = st + char_width(text[st]);
                    star = Some((sp, next));
                    p = sp + 1;
                    t = next;
                }
                None => return false,
            },
        }
    }
    pat[p.min(pat.len())..].iter().all(|&b| b == b'*') && t == text.len()
}

/// The byte length of the UTF-8 character that starts with `lead`.
fn char_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        // A continuation byte never starts a character in valid UTF-8; step over it.
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("read_file", "read_file", true),
            ("read_file", "read_files", false),
            ("read_*", "read_file", true),
            ("read_*", "read_", true),
            ("read_*", "write_file", false),
            ("*_file", "read_file", true),
            ("*_file", "read_files", false),
            ("r?ad", "read", true),
            ("r?ad", "rad", false),
            ("r?ad", "réad", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*b*c", "acb", false),
            ("*a*", "bab", true),
            ("*a*", "bbb", false),
            ("a**", "a", true),
            ("?", "", false),
            ("?", "é", true),
            ("?*", "", false),
            ("file:///docs/*", "file:///docs/a/b.md", true),
            ("file:///docs/*", "file:///etc/passwd", false),
            ("file:///docs/{name}", "file:///docs/{name}", true),
            ("db://x?y", "db://x?y", true),
            ("*.md", "notes/readme.md", true),
            ("*é?", "aéb", true),
        ];
        for &(pat, text, want) in cases {
            assert_eq!(Pattern::new(pat).unwrap().matches(text), want, "{pat:?} vs {text:?}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for pat in ["", "a\nb", &"x".repeat(MAX_PATTERN_LEN + 1)] {
            assert!(Pattern::new(pat).is_err(), "{pat:?}");
        }
    }
}
