//! `vmcp start`'s callers: the stdio user's persona (`--persona` / `VMCP_PERSONA`), network
//! authentication (`--api-keys`, `--oauth-*`), the secure-bind rule, and the persona watcher.
//!
//! Secure defaults: a network front without authentication may only listen on loopback (its
//! callers get full access, like the local user); listening elsewhere without authentication is
//! refused unless `--allow-unauthenticated-network` is given, and then logged loudly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vmcp_config::Home;
use vmcp_gateway::front::http::auth::{Auth, OAuth};
use vmcp_gateway::policy::{Credential, Identity as Who, PersonaBook};
use vmcp_gateway::{Caller, Gateway, persona_watch};
use vmcp_persona::PersonaStore;
use vmcp_persona::audit::AuditLog;
use vmcp_persona::oauth::{OAuthConfig, OAuthValidator};

use crate::UsageError;

/// How often the personas directory is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub struct Identity {
    store: PersonaStore,
    book: Arc<PersonaBook>,
    persona: Option<String>,
    pub network: NetworkAuth,
}

/// Authentication of the network fronts.
pub struct NetworkAuth {
    auth: Option<Arc<Auth>>,
    allow_unauthenticated: bool,
}

impl Identity {
    pub fn load(home: &Home, args: &crate::cli::Identity) -> anyhow::Result<Self> {
        let store = PersonaStore::open(home);
        let personas = store.snapshot()?;
        for problem in personas.problems() {
            tracing::error!("persona not loaded (its callers are refused): {problem}");
        }
        let audit = match AuditLog::open(home) {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::warn!("no audit log: {e}");
                None
            }
        };
        if let Some(name) = &args.persona
            && personas.get(name).is_none()
        {
            let e = store
                .get(name)
                .err()
                .map_or_else(|| format!("persona `{name}` did not load"), |e| e.to_string());
            return Err(UsageError(format!("--persona: {e}")).into());
        }
        let book = Arc::new(PersonaBook::new(personas, audit));
        let oauth = match &args.oauth_issuer {
            None => None,
            Some(issuer) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let issuer = issuer.trim_end_matches('/').to_owned();
                let audience =
                    args.oauth_audience.clone().or_else(|| args.oauth_resource.clone()).ok_or_else(|| {
                        UsageError("--oauth-issuer needs --oauth-audience or --oauth-resource".into())
                    })?;
                let jwks_url =
                    args.oauth_jwks_url.clone().unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
                let cfg = OAuthConfig {
                    issuer,
                    jwks_url,
                    audience,
                    persona_claim: args.oauth_persona_claim.clone(),
                };
                Some(OAuth { validator: OAuthValidator::new(cfg)?, resource: args.oauth_resource.clone() })
            }
        };
        let auth = (args.api_keys || oauth.is_some())
            .then(|| Arc::new(Auth { book: book.clone(), api_keys: args.api_keys, oauth }));
        Ok(Self {
            store,
            book,
            persona: args.persona.clone(),
            network: NetworkAuth { auth, allow_unauthenticated: args.allow_unauthenticated_network },
        })
    }

    /// The personas and the audit log the gateway uses.
    pub fn book(&self) -> Arc<PersonaBook> {
        self.book.clone()
    }

    /// Give the gateway its network authentication, start watching the personas (a task in
    /// `tasks`, which `vmcp start` drains on shutdown), and return the stdio caller.
    pub fn attach(&self, gw: &Arc<Gateway>, stop: &CancellationToken, tasks: &mut JoinSet<()>) -> Caller {
        if let Some(auth) = &self.network.auth {
            gw.set_auth(auth.clone());
        }
        tasks.spawn(persona_watch::watch(
            gw.clone(),
            self.store.clone(),
            self.book.clone(),
            WATCH_INTERVAL,
            stop.clone(),
        ));
        match &self.persona {
            Some(name) => {
                tracing::info!("stdio acts as persona `{name}`");
                Caller::persona(Who::LocalUser, name, Credential::Stdio, self.book.clone())
            }
            None => Caller::local_user(),
        }
    }
}

impl NetworkAuth {
    /// Refuse to listen beyond loopback without authentication (unless overridden).
    pub fn check_bind(&self, host: &str, addr: &str, what: &str) -> anyhow::Result<()> {
        if self.auth.is_none() && !is_loopback(host) && !self.allow_unauthenticated {
            return Err(UsageError(format!(
                "refusing to serve {what} on {addr} without authentication: anyone who can reach it \
                 would get full access. Use --api-keys (and `vmcp persona NAME token create`) or \
                 --oauth-issuer, bind 127.0.0.1, or pass --allow-unauthenticated-network"
            ))
            .into());
        }
        Ok(())
    }

    pub fn log_bound(&self, local: SocketAddr, what: &str) {
        match (&self.auth, local.ip().is_loopback()) {
            (Some(_), _) => tracing::info!("{what} on {local} requires a bearer credential"),
            (None, true) => tracing::info!(
                "{what} on {local} has no authentication: loopback only, callers get full access"
            ),
            (None, false) => tracing::warn!(
                "DANGER: {what} listens on {local}, beyond this machine, WITHOUT AUTHENTICATION \
                 (--allow-unauthenticated-network): anyone who can reach it has full access"
            ),
        }
    }
}

/// Is `host` (an IP address, bracketed or not, or a name) this machine's loopback?
fn is_loopback(host: &str) -> bool {
    let ip = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host == "localhost" || ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        for (host, want) in [
            ("127.0.0.1", true),
            ("127.0.0.2", true),
            ("::1", true),
            ("[::1]", true),
            ("localhost", true),
            ("0.0.0.0", false),
            ("::", false),
            ("192.168.1.2", false),
            ("example.com", false),
        ] {
            assert_eq!(super::is_loopback(host), want, "{host}");
        }
    }
}
