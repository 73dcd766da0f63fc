//! Output of the repository commands: aligned tables and text for people, JSON for scripts.

use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};
use vmcp_config::Home;

use crate::install::{Change, Outcome};
use crate::install_spec::Method;
use crate::lockfile::LockedPackage;
use crate::package::Package;
use crate::search::Hit;
use crate::sources::{self, Repositories, SourceKind, SyncReport};

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Left-aligned columns; the last one is not padded.
fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

pub fn sync_report(r: &SyncReport) {
    println!("{r}");
    for e in r.errors.iter().take(20) {
        eprintln!("vmcp: warning: skipped {}: {}", e.package, e.message);
    }
    if r.errors.len() > 20 {
        eprintln!("vmcp: warning: ... and {} more invalid packages", r.errors.len() - 20);
    }
}

pub fn repo_list(home: &Home, repos: &Repositories, json: bool) -> Result<()> {
    let mut rows = Vec::new();
    for cfg in repos.with_builtin() {
        let (count, synced) = if cfg.kind == SourceKind::Builtin {
            (Some(sources::builtin_packages().len()), Some("built in".to_owned()))
        } else {
            match sources::load_cached(home, &cfg.name) {
                Ok(Some(c)) => (Some(c.packages.len()), Some(c.synced_at)),
                _ => (None, None),
            }
        };
        rows.push(json!({
            "name": cfg.name, "type": cfg.kind.as_str(), "url": cfg.url, "enabled": cfg.enabled,
            "allow_insecure": cfg.allow_insecure, "packages": count, "synced_at": synced,
        }));
    }
    if json {
        return print_json(&rows);
    }
    let mut lines = vec![["NAME", "TYPE", "PACKAGES", "SYNCED", "URL"].map(String::from).to_vec()];
    for r in &rows {
        let s = |k: &str| r[k].as_str().map(str::to_owned).unwrap_or_else(|| "-".into());
        let packages = r["packages"].as_u64().map_or("-".into(), |n| n.to_string());
        lines.push(vec![s("name"), s("type"), packages, s("synced_at"), s("url")]);
    }
    table(&lines);
    Ok(())
}

pub fn search_json(hits: &[Hit<'_>]) -> Vec<Value> {
    hits.iter()
        .map(|h| {
            let p = h.package;
            json!({
                "name": p.name(), "version": p.latest().version, "repository": p.repository,
                "title": p.manifest.title, "description": p.manifest.description, "tags": p.manifest.tags,
                "transports": p.transports(), "match": h.kind,
            })
        })
        .collect()
}

pub fn search_table(hits: &[Hit<'_>]) {
    let mut rows =
        vec![["NAME", "VERSION", "REPOSITORY", "TRANSPORT", "DESCRIPTION"].map(String::from).to_vec()];
    for h in hits {
        let p = h.package;
        rows.push(vec![
            p.name().to_owned(),
            p.latest().version.clone(),
            p.repository.clone(),
            p.transports().join(","),
            shorten(&p.manifest.description, 70),
        ]);
    }
    table(&rows);
}

fn method_line(m: &Method) -> String {
    match m {
        Method::Npm(n) => {
            format!("npm     {}{}", n.package, if n.scripts { " (runs install scripts)" } else { "" })
        }
        Method::Pypi(p) => format!("pypi    {} (virtualenv)", p.package),
        Method::Cargo(c) => format!("cargo   {}", c.krate),
        Method::Binary(b) => format!("binary  {} ({} downloads, sha256-verified)", b.bin, b.downloads.len()),
        Method::Remote(r) => format!("remote  {} ({})", r.url, r.transport),
    }
}

pub fn info_text(pkg: &Package, installed: Option<&LockedPackage>, others: &[&str]) {
    let m = &pkg.manifest;
    println!("{} {}  ({})", m.name, pkg.latest().version, m.display_name());
    println!("  {}", m.description);
    println!("repository: {}", pkg.repository);
    if !others.is_empty() {
        println!("also in:    {}", others.join(", "));
    }
    if !m.tags.is_empty() {
        println!("tags:       {}", m.tags.join(", "));
    }
    if let Some(h) = &m.homepage {
        println!("homepage:   {h}");
    }
    if let Some(l) = &m.license {
        println!("license:    {l}");
    }
    println!("versions:   {}", pkg.versions().join(", "));
    let latest = &pkg.latest().install;
    println!("install methods:");
    for method in &latest.methods {
        println!("  {}", method_line(method));
    }
    if !latest.args.is_empty() {
        println!("arguments:  {}", latest.args.join(" "));
    }
    if !latest.env.is_empty() {
        println!("environment:");
        for v in &latest.env {
            let mut flags = vec![if v.required { "required" } else { "optional" }];
            if v.secret {
                flags.push("secret");
            }
            let about = v.description.as_deref().map(|d| format!(" - {d}")).unwrap_or_default();
            println!("  {} ({}){about}", v.name, flags.join(", "));
        }
    }
    match installed {
        Some(l) => {
            let prev = l.previous.as_deref().map(|p| format!(", previous {p}")).unwrap_or_default();
            println!("installed:  {}{prev} as server `{}`", l.current, l.server_id);
        }
        None => println!("installed:  no (`vmcp install {}`)", m.name),
    }
    if !m.readme.is_empty() {
        println!("\n{}", m.readme);
    }
}

pub fn info_json(pkg: &Package, installed: Option<&LockedPackage>, others: &[&str]) -> Value {
    json!({
        "manifest": pkg.manifest,
        "repository": pkg.repository,
        "also_in": others,
        "versions": pkg.versions(),
        "install": pkg.latest().install,
        "transports": pkg.transports(),
        "installed": installed.map(|l| json!({"server_id": l.server_id, "current": l.current, "previous": l.previous})),
    })
}

pub fn outcome(o: &Outcome, json: bool) -> Result<()> {
    if json {
        return print_json(o);
    }
    let line = match o.change {
        Change::Installed => {
            format!("installed {} {} ({}) as server `{}`", o.package, o.version, o.method, o.server_id)
        }
        Change::Updated => format!(
            "updated {} {} -> {} ({}), server `{}`",
            o.package,
            o.previous.as_deref().unwrap_or("?"),
            o.version,
            o.method,
            o.server_id
        ),
        Change::Unchanged => {
            format!("{} {} is already installed as server `{}`", o.package, o.version, o.server_id)
        }
        Change::RolledBack => format!(
            "rolled back {} {} -> {}, server `{}`",
            o.package,
            o.previous.as_deref().unwrap_or("?"),
            o.version,
            o.server_id
        ),
        Change::Removed => {
            format!("uninstalled {} {} and removed server `{}`", o.package, o.version, o.server_id)
        }
    };
    println!("{line}");
    for w in &o.warnings {
        eprintln!("vmcp: warning: {w}");
    }
    Ok(())
}
