//! `vmcp persona ...`: create, list, show and delete personas; enable and disable servers; allow
//! and deny tools, prompts and resources; issue, list and revoke API keys.
//!
//! Grammar (the persona's name comes before its verbs, as in the seed):
//! - `vmcp persona create NAME [--description TEXT]`, `list [--json]`, `show NAME [--json]`,
//!   `delete NAME`;
//! - `vmcp persona NAME enable|disable SERVER`;
//! - `vmcp persona NAME allow|deny [--kind tool|prompt|resource] [--remove] SERVER:PATTERN`;
//! - `vmcp persona NAME token create [--label TEXT] [--expires-in SPAN | --expires-at TIME]
//!   [--json]`, `token list [--json]`, `token revoke ID`.
//!
//! Every change goes through `PersonaStore` (locked read-modify-write, atomic file) and is
//! recorded in the audit log; an API key is printed once and never stored or logged.

use clap::{Parser, Subcommand};
use serde_json::json;
use vmcp_config::Home;
use vmcp_persona::audit::{AuditEvent, AuditLog};
use vmcp_persona::tokens::{self, Expiry};
use vmcp_persona::{Effect, Persona, PersonaError, PersonaStore, RESERVED_NAMES, RuleKind};

use crate::UsageError;

#[derive(Debug, Parser)]
#[command(name = "vmcp persona", no_binary_name = true)]
struct TopLevel {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Create a persona with zero permissions.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List personas.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one persona: servers, rules, keys (ids only).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a persona and its keys.
    Delete { name: String },
}

#[derive(Debug, Parser)]
#[command(name = "vmcp persona NAME", no_binary_name = true)]
struct OfPersona {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Let the persona use a server (subject to its allow/deny rules).
    Enable { server: String },
    /// Take a server away (its rules are kept).
    Disable { server: String },
    /// Only matching items of SERVER are reachable (once any allow rule exists for the kind).
    Allow(Rule),
    /// Matching items of SERVER are never reachable (deny wins over allow).
    Deny(Rule),
    /// API keys for the network fronts.
    Token {
        #[command(subcommand)]
        command: TokenVerb,
    },
}

#[derive(Debug, clap::Args)]
struct Rule {
    /// `SERVER:PATTERN`; `*` matches any run of characters, `?` one character. Resources match
    /// by URI (`files:file:///docs/*`), tools and prompts by the backend's own name.
    target: String,
    #[arg(long, value_enum, default_value = "tool")]
    kind: RuleKind,
    /// Remove the rule instead of adding it.
    #[arg(long)]
    remove: bool,
}

#[derive(Debug, Subcommand)]
enum TokenVerb {
    /// Issue a key; it is printed once and only its hash is kept.
    Create {
        #[arg(long)]
        label: Option<String>,
        /// The key stops working this long after now: a number and a unit, s, m, h, d or w
        /// (`30d`, `12h`).
        #[arg(long, value_name = "SPAN", conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// The key stops working at this RFC 3339 time (`2026-12-31T23:59:59Z`).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List keys (ids, labels, dates, expiry; never the keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id.
    Revoke { id: String },
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let home = Home::from_env();
    let store = PersonaStore::open(&home);
    let first = args.first().map(String::as_str);
    let is_top = first.is_none_or(|a| RESERVED_NAMES.contains(&a) || a.starts_with('-'));
    if is_top {
        let top = TopLevel::try_parse_from(args).map_err(clap_error)?;
        return top_level(&home, &store, top.command);
    }
    let name = &args[0];
    let verb = OfPersona::try_parse_from(&args[1..]).map_err(clap_error)?;
    of_persona(&home, &store, name, verb.command)
}

/// Help and version go to stdout and exit 0; real mistakes are usage errors (exit 64).
fn clap_error(e: clap::Error) -> anyhow::Error {
    if !e.use_stderr() {
        let _ = e.print();
        std::process::exit(0);
    }
    UsageError(e.to_string().trim_end().trim_start_matches("error: ").to_owned()).into()
}

fn usage(e: PersonaError) -> anyhow::Error {
    if e.is_usage() { UsageError(e.to_string()).into() } else { e.into() }
}

/// A change the command made: record it and say so. A command that changed nothing (enabling an
/// enabled server, adding a rule that is there) records nothing and says `nothing changed`.
fn changed(home: &Home, persona: &str, action: &str, detail: &str, change: Option<&str>, unchanged: &str) {
    match change {
        Some(done) => {
            audit(home, persona, action, detail);
            println!("{done}");
        }
        None => println!("{unchanged}: nothing changed"),
    }
}

fn audit(home: &Home, persona: &str, action: &str, detail: &str) {
    let event = AuditEvent::Changed { who: "cli", persona, action, detail };
    if let Err(e) = AuditLog::open(home).and_then(|log| log.record(&event)) {
        eprintln!("vmcp: warning: cannot write the audit log: {e}");
    }
}

fn top_level(home: &Home, store: &PersonaStore, cmd: Top) -> anyhow::Result<()> {
    match cmd {
        Top::Create { name, description } => {
            store.create(&name, description).map_err(usage)?;
            audit(home, &name, "create", "");
            println!("created persona `{name}` (no servers enabled: it reaches nothing yet)");
            println!("next: vmcp persona {name} enable SERVER");
        }
        Top::List { json } => {
            let all = store.list().map_err(usage)?;
            if json {
                let v: Vec<_> = all.iter().map(describe).collect();
                println!("{}", serde_json::to_string_pretty(&json!({ "personas": v }))?);
            } else if all.is_empty() {
                println!("no personas (create one with `vmcp persona create NAME`)");
            } else {
                for p in &all {
                    let servers: Vec<&str> = p.enabled_servers().collect();
                    let servers = if servers.is_empty() { "-".to_owned() } else { servers.join(",") };
                    println!("{:<24} servers: {:<30} keys: {}", p.name(), servers, p.raw().tokens.len());
                }
            }
        }
        Top::Show { name, json } => {
            let p = store.get(&name).map_err(usage)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&describe(&p))?);
            } else {
                print_persona(&p);
            }
        }
        Top::Delete { name } => {
            let p = store.delete(&name).map_err(usage)?;
            audit(home, &name, "delete", "");
            println!("deleted persona `{}` and its {} key(s)", p.name(), p.raw().tokens.len());
        }
    }
    Ok(())
}

fn of_persona(home: &Home, store: &PersonaStore, name: &str, verb: Verb) -> anyhow::Result<()> {
    match verb {
        Verb::Enable { server } => {
            let (_, done) = store.update(name, |p| p.enable(&server)).map_err(usage)?;
            let already = format!("`{server}` is already enabled");
            changed(home, name, "enable", &server, done.then_some("enabled"), &already);
        }
        Verb::Disable { server } => {
            let (_, done) = store.update(name, |p| Ok(p.disable(&server))).map_err(usage)?;
            let not = format!("`{server}` was not enabled");
            changed(home, name, "disable", &server, done.then_some("disabled"), &not);
        }
        Verb::Allow(rule) => change_rule(home, store, name, Effect::Allow, rule)?,
        Verb::Deny(rule) => change_rule(home, store, name, Effect::Deny, rule)?,
        Verb::Token { command } => token(home, store, name, command)?,
    }
    Ok(())
}

fn change_rule(
    home: &Home,
    store: &PersonaStore,
    name: &str,
    effect: Effect,
    rule: Rule,
) -> anyhow::Result<()> {
    let (server, pattern) =
        rule.target.split_once(':').filter(|(s, p)| !s.is_empty() && !p.is_empty()).ok_or_else(|| {
            UsageError(format!("`{}` is not SERVER:PATTERN (e.g. files:read_*)", rule.target))
        })?;
    let (_, done) = store
        .update(name, |p| {
            if rule.remove {
                Ok(p.remove_rule(server, rule.kind, effect, pattern))
            } else {
                p.add_rule(server, rule.kind, effect, pattern)
            }
        })
        .map_err(usage)?;
    let action = match (effect, rule.remove) {
        (Effect::Allow, false) => "allow",
        (Effect::Deny, false) => "deny",
        (Effect::Allow, true) => "allow_removed",
        (Effect::Deny, true) => "deny_removed",
    };
    let unchanged = if rule.remove { "there is no such rule" } else { "the rule is already there" };
    let detail = format!("{server}:{pattern} ({})", rule.kind.as_str());
    changed(home, name, action, &detail, done.then_some("done"), unchanged);
    Ok(())
}

fn token(home: &Home, store: &PersonaStore, name: &str, cmd: TokenVerb) -> anyhow::Result<()> {
    match cmd {
        TokenVerb::Create { label, expires_in, expires_at, json } => {
            let expiry = match (expires_in, expires_at) {
                (Some(span), _) => Some(Expiry::after(&span).map_err(usage)?),
                (None, Some(at)) => Some(Expiry::at(&at).map_err(usage)?),
                (None, None) => None,
            };
            let (_, issued) = store.update(name, |p| tokens::issue(p, label, expiry)).map_err(usage)?;
            let until = expiry.map(Expiry::to_rfc3339);
            let detail = match &until {
                Some(t) => format!("{} (expires {t})", issued.id),
                None => issued.id.clone(),
            };
            audit(home, name, "token_create", &detail);
            if json {
                println!(
                    "{}",
                    json!({ "persona": name, "id": issued.id, "key": issued.key, "expires": until })
                );
            } else {
                println!("{}", issued.key);
                let until = until.as_deref().map_or(String::new(), |t| format!(", valid until {t}"));
                eprintln!("key {} for persona `{name}`{until}: shown once, only its hash is kept", issued.id);
            }
            if expiry.is_some_and(Expiry::passed) {
                eprintln!("vmcp: warning: key {} has already expired; it will be refused", issued.id);
            }
        }
        TokenVerb::List { json } => {
            let p = store.get(name).map_err(usage)?;
            let list: Vec<_> = p.raw().tokens.iter().map(token_summary).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({ "persona": name, "tokens": list }))?);
            } else if list.is_empty() {
                println!("no keys (create one with `vmcp persona {name} token create`)");
            } else {
                for t in &p.raw().tokens {
                    let expires = match t.expiry() {
                        Some(e) if e.passed() => format!("expired {}", e.to_rfc3339()),
                        Some(e) => format!("expires {}", e.to_rfc3339()),
                        None => "never expires".to_owned(),
                    };
                    println!(
                        "{}  {}  {:<36}  {}",
                        t.id,
                        t.created,
                        expires,
                        t.label.as_deref().unwrap_or("")
                    );
                }
            }
        }
        TokenVerb::Revoke { id } => {
            store.update(name, |p| tokens::revoke(p, &id)).map_err(usage)?;
            audit(home, name, "token_revoke", &id);
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn describe(p: &Persona) -> serde_json::Value {
    let raw = p.raw();
    json!({
        "name": raw.name,
        "description": raw.description,
        "created": raw.created,
        "modified": raw.modified,
        "enabled_servers": raw.enabled_servers,
        "rules": raw.rules,
        "tokens": raw.tokens.iter().map(token_summary).collect::<Vec<_>>(),
    })
}

/// What may be shown of a key: its id, label, dates and whether it has expired (never its hash).
fn token_summary(t: &tokens::RawToken) -> serde_json::Value {
    json!({
        "id": t.id,
        "label": t.label,
        "created": t.created,
        "expires": t.expires,
        "expired": t.expired(),
    })
}

fn print_persona(p: &Persona) {
    let raw = p.raw();
    println!("persona:     {}", raw.name);
    if let Some(d) = &raw.description {
        println!("description: {d}");
    }
    println!("created:     {}", raw.created);
    println!("modified:    {}", raw.modified);
    let servers: Vec<&str> = p.enabled_servers().collect();
    println!(
        "servers:     {}",
        if servers.is_empty() { "(none: reaches nothing)".to_owned() } else { servers.join(", ") }
    );
    for (server, rules) in &raw.rules {
        for kind in RuleKind::ALL {
            let set = rules.kind(kind);
            for pat in &set.allow {
                println!("  allow {} {server}:{pat}", kind.as_str());
            }
            for pat in &set.deny {
                println!("  deny  {} {server}:{pat}", kind.as_str());
            }
        }
    }
    let expired = raw.tokens.iter().filter(|t| t.expired()).count();
    let expired = if expired > 0 { format!(" ({expired} expired)") } else { String::new() };
    println!("keys:        {}{expired}", raw.tokens.len());
}
