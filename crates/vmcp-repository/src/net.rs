//! HTTP for sources and downloads: a blocking `ureq` client with an https-only policy.
//!
//! Invariant: no request leaves for a plain `http://` URL unless the operator allowed insecure
//! sources (`--allow-insecure`, stored per repository) or the URL is on loopback and
//! `VMCP_ALLOW_INSECURE_LOCALHOST=1` is set (for tests). Redirects never downgrade to http.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{IoContext, RepoError, Result};
use crate::package::hex;
use crate::progress::Progress;

/// The environment switch that allows `http://` on loopback addresses only.
pub const INSECURE_LOCALHOST_ENV: &str = "VMCP_ALLOW_INSECURE_LOCALHOST";

/// A response body, or "not modified" for a conditional request.
#[derive(Debug)]
pub enum Fetched {
    NotModified,
    Body { bytes: Vec<u8>, etag: Option<String> },
}

/// The client, with its URL policy.
pub struct Net {
    allow_insecure: bool,
    secure: ureq::Agent,
    plain: ureq::Agent,
}

impl Net {
    pub fn new(allow_insecure: bool) -> Self {
        let agent = |https_only: bool, redirects: u32| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .https_only(https_only)
                .max_redirects(redirects)
                .user_agent(concat!("vmcp/", env!("CARGO_PKG_VERSION")))
                .timeout_connect(Some(Duration::from_secs(15)))
                .timeout_recv_response(Some(Duration::from_secs(60)))
                .timeout_per_read(Some(Duration::from_secs(60)))
                .build()
                .into()
        };
        Self {
            allow_insecure,
            secure: agent(true, 10),
            plain: agent(false, if allow_insecure { 10 } else { 0 }),
        }
    }

    /// Refuse what the policy forbids; return the agent to use.
    fn agent_for(&self, url: &str) -> Result<&ureq::Agent> {
        if url.starts_with("https://") {
            return Ok(&self.secure);
        }
        if let Some(rest) = url.strip_prefix("http://") {
            if self.allow_insecure || (is_loopback(rest) && localhost_allowed()) {
                return Ok(&self.plain);
            }
            return Err(RepoError::usage(format!(
                "refusing plain http URL {url}: use https, or pass --allow-insecure if you trust this network"
            )));
        }
        Err(RepoError::usage(format!("unsupported URL {url}: expected https://")))
    }

    /// Check a URL against the policy without fetching it.
    pub fn check_url(&self, url: &str) -> Result<()> {
        self.agent_for(url).map(|_| ())
    }

    /// GET with an optional `If-None-Match`, reading at most `limit` bytes.
    pub fn get(&self, url: &str, etag: Option<&str>, limit: u64) -> Result<Fetched> {
        let agent = self.agent_for(url)?;
        let mut req = agent.get(url);
        if let Some(tag) = etag {
            req = req.header("If-None-Match", tag);
        }
        let resp = req.call().map_err(|e| net_err(url, e))?;
        let status = resp.status().as_u16();
        if status == 304 {
            return Ok(Fetched::NotModified);
        }
        if !(200..300).contains(&status) {
            return Err(RepoError::Network { url: url.to_owned(), message: format!("HTTP {status}") });
        }
        let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes =
            resp.into_body().into_with_config().limit(limit).read_to_vec().map_err(|e| net_err(url, e))?;
        Ok(Fetched::Body { bytes, etag })
    }

    /// GET a small text document (index, manifest).
    pub fn get_text(&self, url: &str, limit: u64) -> Result<String> {
        match self.get(url, None, limit)? {
            Fetched::Body { bytes, .. } => String::from_utf8(bytes).map_err(|_| RepoError::Network {
                url: url.to_owned(),
                message: "response is not UTF-8".into(),
            }),
            Fetched::NotModified => {
                Err(RepoError::Network { url: url.to_owned(), message: "unexpected 304".into() })
            }
        }
    }

    /// Stream `url` into `dest` (created), returning the sha256 hex of what was written.
    pub fn download(&self, url: &str, dest: &Path, limit: u64, progress: &Progress) -> Result<String> {
        let agent = self.agent_for(url)?;
        let resp = agent.get(url).call().map_err(|e| net_err(url, e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(RepoError::Network { url: url.to_owned(), message: format!("HTTP {status}") });
        }
        let body = resp.into_body();
        let bar = progress.bytes(&format!("downloading {}", short_url(url)), body.content_length());
        let mut reader = body.into_with_config().limit(limit).reader();
        let mut file = std::fs::File::create(dest).at(dest)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| RepoError::Network { url: url.to_owned(), message: e.to_string() })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).at(dest)?;
            bar.inc(n as u64);
        }
        file.sync_all().at(dest)?;
        Ok(hex(&hasher.finalize()))
    }
}

fn net_err(url: &str, e: ureq::Error) -> RepoError {
    RepoError::Network { url: url.to_owned(), message: e.to_string() }
}

fn localhost_allowed() -> bool {
    std::env::var(INSECURE_LOCALHOST_ENV).is_ok_and(|v| v == "1")
}

/// True when the authority (after `http://`) is 127.0.0.0/8, `localhost` or `[::1]`.
fn is_loopback(after_scheme: &str) -> bool {
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn short_url(url: &str) -> &str {
    url.rsplit('/').find(|s| !s.is_empty()).unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_loopback_only() {
        for ok in ["127.0.0.1:8080/x", "localhost/index.json", "[::1]:1/x", "127.1.2.3"] {
            assert!(is_loopback(ok), "{ok}");
        }
        for bad in ["example.com", "127.0.0.1.evil.com/x", "localhost.evil/x", "user@127.0.0.1/x", "10.0.0.1"]
        {
            assert!(!is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn policy_refuses_plain_http_and_other_schemes() {
        let net = Net::new(false);
        assert!(net.check_url("https://example.com/index.json").is_ok());
        assert!(net.check_url("http://example.com/index.json").is_err());
        assert!(net.check_url("file:///etc/passwd").is_err());
        assert!(net.check_url("ftp://x").is_err());
        assert!(Net::new(true).check_url("http://example.com/").is_ok());
    }
}
