//! What one benchmark request is: a method and its params, written as a request line per id.

use std::time::Duration;

use serde_json::value::RawValue;
use vmcp_protocol::{message, meta, splice};

use crate::cli::{Load, Method};

/// A validated workload.
#[derive(Debug, Clone)]
pub struct Workload {
    method: &'static str,
    params: Option<String>,
    pub concurrency: usize,
    pub requests: u64,
    pub warmup: u64,
    pub timeout: Duration,
    pub startup_timeout: Duration,
    pub show_stderr: bool,
    pub allow_errors: bool,
    /// Modern-era requests (no handshake; `_meta` on each).
    pub modern: bool,
    label: String,
}

/// A command line that does not describe a runnable workload (exit 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Workload {
    pub fn from_load(load: &Load) -> Result<Self, UsageError> {
        let (method, params) = match load.method {
            Method::ToolsCall => {
                let args = RawValue::from_string(load.args.clone())
                    .map_err(|e| UsageError(format!("--args is not JSON: {e}")))?;
                if !args.get().trim_start().starts_with('{') {
                    return Err(UsageError("--args must be a JSON object, e.g. '{\"text\":\"hi\"}'".into()));
                }
                let params =
                    format!(r#"{{"name":{},"arguments":{}}}"#, splice::quote(&load.tool), args.get());
                ("tools/call", Some(params))
            }
            Method::ToolsList => ("tools/list", None),
            Method::Ping => ("ping", None),
        };
        let seconds = |what: &str, s: f64| {
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| UsageError(format!("--{what} must be a positive number of seconds")))
        };
        let params = if load.modern { Some(meta::add_modern(params.as_deref(), "{}")) } else { params };
        let era = if load.modern { " modern" } else { "" };
        let label = match load.method {
            Method::ToolsCall => format!("tools/call {}{era} c={}", load.tool, load.concurrency),
            _ => format!("{method}{era} c={}", load.concurrency),
        };
        Ok(Self {
            method,
            params,
            concurrency: load.concurrency as usize,
            requests: load.requests,
            warmup: load.warmup,
            timeout: seconds("timeout", load.timeout)?,
            startup_timeout: seconds("startup-timeout", load.startup_timeout)?,
            show_stderr: load.show_stderr,
            allow_errors: load.allow_errors,
            modern: load.modern,
            label,
        })
    }

    /// A workload for the HTTP commands, which speak the legacy era only.
    pub fn legacy_only(load: &Load) -> Result<Self, UsageError> {
        if load.modern {
            return Err(UsageError("--modern is for the stdio runs (`stdio`, `compare`)".into()));
        }
        Self::from_load(load)
    }

    /// The request line (with its newline) for this id.
    pub fn line(&self, id: u64) -> String {
        let mut line = message::request(&id.to_string(), self.method, self.params.as_deref());
        line.push('\n');
        line
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    /// A short description, e.g. `tools/call echo c=32`.
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn workload(args: &[&str]) -> Result<Workload, UsageError> {
        let argv = [&["vmcp-bench", "stdio"], args, &["--", "server"]].concat();
        let Command::Stdio { load, .. } = Cli::try_parse_from(argv).unwrap().command else { unreachable!() };
        Workload::from_load(&load)
    }

    #[test]
    fn builds_request_lines() {
        let w = workload(&["--tool", "echo", "--args", r#"{"text":"a"}"#]).unwrap();
        assert_eq!(
            w.line(5),
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"a\"}}}\n"
        );
        let w = workload(&["--method", "tools/list", "-c", "4"]).unwrap();
        assert_eq!(w.line(1), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n");
        assert_eq!(w.label(), "tools/list c=4");
    }

    #[test]
    fn modern_requests_carry_the_version_and_capabilities_in_their_meta() {
        let w = workload(&["--modern", "--tool", "echo", "--args", r#"{"text":"a"}"#]).unwrap();
        let line: serde_json::Value = serde_json::from_str(&w.line(5)).unwrap();
        assert_eq!(line["params"]["name"], "echo");
        assert_eq!(line["params"]["arguments"]["text"], "a");
        assert_eq!(line["params"]["_meta"][meta::PROTOCOL_VERSION], "2026-07-28");
        assert!(line["params"]["_meta"][meta::CLIENT_CAPABILITIES].is_object());
        assert_eq!(w.label(), "tools/call echo modern c=1");
        let list: serde_json::Value =
            serde_json::from_str(&workload(&["--modern", "--method", "tools/list"]).unwrap().line(1))
                .unwrap();
        assert_eq!(list["params"]["_meta"][meta::PROTOCOL_VERSION], "2026-07-28");
    }

    #[test]
    fn rejects_bad_arguments() {
        for args in [&["--args", "{nope"][..], &["--args", "[1]"], &["--timeout", "0"], &["--timeout=-1"]] {
            assert!(workload(args).is_err(), "{args:?}");
        }
    }
}
