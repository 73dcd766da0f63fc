//! Lexical reads and edits of JSON text that has already been validated (a `RawValue`).
//!
//! vMCP changes a handful of members (an id, a tool name, a progress token) and must leave every
//! other byte exactly as the peer wrote it: key order, whitespace, number formats, unknown fields.
//! So instead of parsing into a tree and re-serializing, these functions find the byte spans of
//! members and splice new text in.
//!
//! Invariant: input is valid JSON (callers pass `RawValue::get()` text). On anything else the
//! functions return `None` rather than panic.

use std::borrow::Cow;
use std::ops::Range;

/// One member of a JSON object: its key (unescaped) and the raw text of its value.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub key: Cow<'a, str>,
    /// Span of the whole member, from the key's opening quote to the end of the value.
    pub span: Range<usize>,
    pub value: &'a str,
}

/// What to do with one key in [`edit_object`].
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Replace the value in place, or append the member if the key is absent.
    Set(&'a str),
    /// Replace only if present.
    Replace(&'a str),
    /// Append the member if the key is absent; leave an existing value alone.
    Default(&'a str),
    Remove,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `b[i]` is `"`; returns the index just past the closing quote.
pub fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        // Most of a list's bytes are inside strings: jump to the next quote or backslash.
        let j = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        i = j + 2;
    }
}

/// The index just past the JSON value that starts at byte `i` of `b` (which must be that value's
/// first byte), read lexically: nothing is validated or allocated. `None` if it does not end.
pub fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

fn unescape_key(raw: &str) -> Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if inner.contains('\\') {
        Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_else(|_| inner.to_owned()))
    } else {
        Cow::Borrowed(inner)
    }
}

/// The members of the object `text`, in order. `None` if `text` is not an object.
pub fn members(text: &str) -> Option<Vec<Member<'_>>> {
    let mut out = Vec::new();
    scan_members(text, |m| {
        out.push(m);
        true
    })?;
    Some(out)
}

/// Walk the members of the object `text` in order, until `f` returns `false`. `None` if what
/// was walked is not an object (a malformed rest after an early stop goes unnoticed: callers
/// read text that was parsed before).
pub fn scan_members<'a>(text: &'a str, mut f: impl FnMut(Member<'a>) -> bool) -> Option<()> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(());
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i;
        let key_end = string_end(b, i)?;
        let key = unescape_key(&text[start..key_end]);
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let vstart = skip_ws(b, i + 1);
        let vend = value_end(b, vstart)?;
        if !f(Member { key, span: start..vend, value: &text[vstart..vend] }) {
            return Some(());
        }
        i = skip_ws(b, vend);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Some(()),
            _ => return None,
        }
    }
}

/// The raw value of `key` in the object `text`.
pub fn get<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    scan_members(text, |m| {
        if m.key == key {
            found = Some(m.value);
            return false;
        }
        true
    })?;
    found
}

/// The raw value at a path of keys.
pub fn get_path<'a>(text: &'a str, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(text, |cur, key| get(cur, key))
}

/// A string value, unescaped.
pub fn as_str(raw: &str) -> Option<Cow<'_, str>> {
    let raw = raw.trim();
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') { Some(unescape_key(raw)) } else { None }
}

/// The elements of the array `text`, as raw values.
pub fn elements(text: &str) -> Option<Vec<&str>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&b']') {
        return Some(out);
    }
    loop {
        let end = value_end(b, i)?;
        out.push(&text[i..end]);
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Some(out),
            _ => return None,
        }
    }
}

/// Apply `edits` to the object `text`; untouched bytes are copied verbatim. Appended members go
/// before the closing brace in the order given. `None` if `text` is not an object.
pub fn edit_object(text: &str, edits: &[(&str, Op<'_>)]) -> Option<String> {
    let ms = members(text)?;
    let close = text.rfind('}')?;
    let body_start = ms.first().map_or(close, |m| m.span.start);
    let body_end = ms.last().map_or(close, |m| m.span.end);
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str(&text[..body_start]);
    let mut done = vec![false; edits.len()];
    let mut kept = 0usize;
    let mut prev_end: Option<usize> = None;
    for m in &ms {
        let hit = edits.iter().position(|(k, _)| *k == m.key);
        if let Some(h) = hit {
            done[h] = true;
        }
        let value = match hit.map(|h| edits[h].1) {
            Some(Op::Remove) => {
                prev_end = Some(m.span.end);
                continue;
            }
            Some(Op::Set(v) | Op::Replace(v)) => Some(v),
            Some(Op::Default(_)) | None => None,
        };
        if kept > 0 {
            // The separator the peer wrote before this member (", " and the like).
            out.push_str(prev_end.map_or(",", |e| &text[e..m.span.start]));
        }
        match value {
            Some(v) => {
                out.push_str(&text[m.span.start..m.span.end - m.value.len()]);
                out.push_str(v);
            }
            None => out.push_str(&text[m.span.clone()]),
        }
        kept += 1;
        prev_end = Some(m.span.end);
    }
    for ((key, op), was_done) in edits.iter().zip(&done) {
        if let (false, Op::Set(v) | Op::Default(v)) = (*was_done, op) {
            if kept > 0 {
                out.push(',');
            }
            out.push_str(&quote(key));
            out.push(':');
            out.push_str(v);
            kept += 1;
        }
    }
    out.push_str(&text[body_end..]);
    Some(out)
}

/// Edit a nested object at `path` (creating intermediate objects with `Op::Set`/`Op::Default`).
pub fn edit_path(text: &str, path: &[&str], op: Op<'_>) -> Option<String> {
    match path {
        [] => None,
        [key] => edit_object(text, &[(key, op)]),
        [key, rest @ ..] => match get(text, key) {
            Some(inner) if inner.trim_start().starts_with('{') => {
                let edited = edit_path(inner, rest, op)?;
                edit_object(text, &[(key, Op::Replace(&edited))])
            }
            _ => match op {
                Op::Set(_) | Op::Default(_) => {
                    let edited = edit_path("{}", rest, op)?;
                    edit_object(text, &[(key, Op::Set(&edited))])
                }
                Op::Replace(_) | Op::Remove => Some(text.to_owned()),
            },
        },
    }
}

/// Quote `s` as a JSON string.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests;
