//! Pagination of the four lists: pages of an optional size, with opaque `nextCursor`s.

use super::base64;
use super::wire::RpcError;

const PREFIX: &str = "kit-offset:";

/// Which slice of a list of `len` items to send, and the cursor for the rest.
pub fn page(
    len: usize,
    cursor: Option<&str>,
    size: Option<usize>,
) -> Result<(std::ops::Range<usize>, Option<String>), RpcError> {
    let start = match cursor {
        None => 0,
        Some(c) => {
            decode(c).filter(|&o| o <= len).ok_or_else(|| RpcError::invalid_params("invalid cursor"))?
        }
    };
    let end = match size {
        Some(n) if n > 0 => start.saturating_add(n).min(len),
        _ => len,
    };
    let next = (end < len).then(|| encode(end));
    Ok((start..end, next))
}

fn encode(offset: usize) -> String {
    base64::encode(format!("{PREFIX}{offset}").as_bytes())
}

fn decode(cursor: &str) -> Option<usize> {
    let bytes = base64::decode(cursor)?;
    std::str::from_utf8(&bytes).ok()?.strip_prefix(PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_list_in_pages() {
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let (range, next) = page(7, cursor.as_deref(), Some(3)).unwrap();
            seen.push(range);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, vec![0..3, 3..6, 6..7]);
    }

    #[test]
    fn sizes_and_cursors() {
        let far = encode(9);
        let cases = [
            (0, None, Some(3), Ok((0..0, false))),
            (5, None, None, Ok((0..5, false))),
            (5, None, Some(0), Ok((0..5, false))),
            (5, Some("nope"), Some(2), Err(())),
            (2, Some(far.as_str()), None, Err(())),
        ];
        for (len, cursor, size, want) in cases {
            let got = page(len, cursor, size).map(|(r, n)| (r, n.is_some())).map_err(|_| ());
            assert_eq!(got, want, "len {len} cursor {cursor:?} size {size:?}");
        }
    }
}
