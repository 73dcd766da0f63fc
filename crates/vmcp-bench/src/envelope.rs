//! Just enough of a JSON-RPC line to route it: its kind and numeric id, read lexically.
//!
//! The load loop reads every response, some of them hundreds of kilobytes (a 1,000-tool list).
//! Validating them all would put the client's own parse cost into both sides of a comparison, so
//! the loop only scans top-level keys and stops as soon as it knows the id and the kind: with the
//! usual member order (`jsonrpc`, `id`, `result`) it never looks at the payload.
//!
//! Invariant: never panics, whatever the bytes; what it cannot read is `Kind::Unreadable`.

use vmcp_protocol::splice::{string_end, value_end};

/// What one line from the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Result,
    Error,
    /// A request from the server to the client (`ping`, `roots/list`, ...).
    Request,
    Notification,
    Unreadable,
}

/// The kind and, when it is a non-negative integer, the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub kind: Kind,
    pub id: Option<u64>,
}

/// Scan the top-level members of `line` until the id and the kind are both known.
pub fn scan(line: &[u8]) -> Envelope {
    let unreadable = Envelope { kind: Kind::Unreadable, id: None };
    let mut i = skip_ws(line, 0);
    if line.get(i) != Some(&b'{') {
        return unreadable;
    }
    i += 1;
    let (mut id, mut has_id, mut kind) = (None, false, None);
    loop {
        i = skip_ws(line, i);
        if line.get(i) != Some(&b'"') {
            return finish(kind, has_id, id);
        }
        let Some(key_end) = string_end(line, i) else { return unreadable };
        let key = &line[i + 1..key_end - 1];
        i = skip_ws(line, key_end);
        if line.get(i) != Some(&b':') {
            return unreadable;
        }
        let value_start = skip_ws(line, i + 1);
        match key {
            b"id" => has_id = true,
            b"result" => kind = Some(Kind::Result),
            b"error" => kind = Some(Kind::Error),
            b"method" => kind = Some(Kind::Request),
            _ => {}
        }
        // A response is known once it has an id; a `method` line needs the whole object, since
        // only a missing id makes it a notification.
        if matches!(kind, Some(Kind::Result | Kind::Error)) && has_id && key != b"id" {
            return finish(kind, has_id, id);
        }
        let Some(end) = value_end(line, value_start) else { return unreadable };
        if key == b"id" {
            id = std::str::from_utf8(&line[value_start..end]).ok().and_then(|s| s.parse().ok());
            if matches!(kind, Some(Kind::Result | Kind::Error)) {
                return finish(kind, has_id, id);
            }
        }
        i = skip_ws(line, end);
        match line.get(i) {
            Some(b',') => i += 1,
            _ => return finish(kind, has_id, id),
        }
    }
}

fn finish(kind: Option<Kind>, has_id: bool, id: Option<u64>) -> Envelope {
    let kind = match kind {
        Some(Kind::Request) if !has_id => Kind::Notification,
        Some(k) => k,
        None => Kind::Unreadable,
    };
    Envelope { kind, id }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kind: Kind, id: Option<u64>) -> Envelope {
        Envelope { kind, id }
    }

    #[test]
    fn reads_kind_and_id_in_any_member_order() {
        let cases: [(&str, Envelope); 9] = [
            (r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}"#, env(Kind::Result, Some(7))),
            (r#"{"result":{"a":"}\"]"},"jsonrpc":"2.0","id":8}"#, env(Kind::Result, Some(8))),
            (r#" { "id" : 9 , "error" : {"code":-1} } "#, env(Kind::Error, Some(9))),
            (r#"{"jsonrpc":"2.0","id":"x","result":{}}"#, env(Kind::Result, None)),
            (r#"{"jsonrpc":"2.0","method":"ping","id":3}"#, env(Kind::Request, Some(3))),
            (r#"{"jsonrpc":"2.0","id":4,"method":"roots/list"}"#, env(Kind::Request, Some(4))),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
                env(Kind::Notification, None),
            ),
            (r#"{"jsonrpc":"2.0"}"#, env(Kind::Unreadable, None)),
            (r#"not json"#, env(Kind::Unreadable, None)),
        ];
        for (line, want) in cases {
            assert_eq!(scan(line.as_bytes()), want, "{line}");
        }
    }

    #[test]
    fn truncated_lines_do_not_panic() {
        let full = br#"{"jsonrpc":"2.0","result":{"x":[1,2,{"y":"z\""}]},"id":12}"#;
        for end in 0..full.len() {
            let _ = scan(&full[..end]);
        }
        assert_eq!(scan(full), env(Kind::Result, Some(12)));
    }
}
