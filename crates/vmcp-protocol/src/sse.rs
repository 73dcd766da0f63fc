//! Server-sent events: encoding events for clients, and an incremental parser for streams read
//! from backends.
//!
//! Invariant: an event's data may span lines; encoding splits on `\n` so a JSON message (which
//! never contains a raw newline) is always one `data:` line.

/// One event as received.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Encode an event. `data` lines are split on `\n`.
pub fn encode(id: Option<&str>, event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(ev) = event {
        out.push_str("event: ");
        out.push_str(ev);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// A priming event (2025-11-25): an id and an empty data field, plus the reconnection delay.
pub fn priming(id: &str, retry_ms: u64) -> String {
    format!("id: {id}\nretry: {retry_ms}\ndata: \n\n")
}

/// Incremental parser: feed bytes, take complete events.
#[derive(Debug, Default)]
pub struct Parser {
    buf: String,
    current: Event,
    has_data: bool,
}

impl Parser {
    /// Feed a chunk; returns the events it completed. Invalid UTF-8 is replaced.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(nl) = self.buf.find('\n') {
            let mut line: String = self.buf.drain(..=nl).collect();
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
            self.line(&line, &mut out);
        }
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data || self.current.id.is_some() || self.current.event.is_some() {
                let ev = std::mem::take(&mut self.current);
                self.has_data = false;
                out.push(ev);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.current.id = Some(value.to_owned()),
            "event" => self.current.event = Some(value.to_owned()),
            "retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_parses_in_pieces() {
        let text = format!(
            "{}: keep-alive\n\n{}",
            encode(Some("s1-1"), None, r#"{"a":1}"#),
            encode(None, Some("endpoint"), "/messages?s=1")
        );
        let mut p = Parser::default();
        let mut events = Vec::new();
        for chunk in text.as_bytes().chunks(3) {
            events.extend(p.feed(chunk));
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("s1-1"));
        assert_eq!(events[0].data, r#"{"a":1}"#);
        assert_eq!(events[1].event.as_deref(), Some("endpoint"));
        assert_eq!(events[1].data, "/messages?s=1");
        let primed = p.feed(priming("x", 500).as_bytes());
        assert_eq!(primed[0].retry, Some(500));
        assert_eq!(primed[0].data, "");
        let multi = Parser::default().feed(b"data: a\r\ndata: b\r\n\r\n");
        assert_eq!(multi[0].data, "a\nb");
    }
}
