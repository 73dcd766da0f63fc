//! Talking to a running gateway over its control socket (`$VMCP_HOME/run/vmcp.sock`):
//! `vmcp status`, `vmcp stop`, and the live columns of `vmcp list`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};
use vmcp_config::Home;

/// A connection to the running gateway; `None` when none is running.
pub struct Control {
    out: UnixStream,
    lines: std::io::Lines<BufReader<UnixStream>>,
    next: u64,
}

impl Control {
    pub fn connect(home: &Home) -> Option<Control> {
        let stream = UnixStream::connect(home.run_dir().join("vmcp.sock")).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let lines = BufReader::new(stream.try_clone().ok()?).lines();
        let mut c = Control { out: stream, lines, next: 0 };
        c.call("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "vmcp-cli", "version": env!("CARGO_PKG_VERSION") } })).ok()?;
        writeln!(c.out, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#).ok()?;
        Some(c)
    }

    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next += 1;
        let id = self.next;
        writeln!(self.out, "{}", json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))?;
        for line in self.lines.by_ref() {
            let v: Value = serde_json::from_str(&line?)?;
            if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
                if let Some(e) = v.get("error") {
                    anyhow::bail!("{method}: {}", e["message"].as_str().unwrap_or("error"));
                }
                return Ok(v["result"].clone());
            }
        }
        anyhow::bail!("the gateway closed the control connection")
    }
}

pub fn status(json_out: bool) -> anyhow::Result<()> {
    let home = Home::from_env();
    let Some(mut c) = Control::connect(&home) else {
        if json_out {
            println!(r#"{{"running":false}}"#);
        } else {
            println!("vmcp is not running (no gateway on {})", home.run_dir().join("vmcp.sock").display());
        }
        std::process::exit(3);
    };
    let health = c.call("vmcp/servers/health", json!({}))?;
    let metrics = c.call("vmcp/metrics", json!({}))?;
    let servers = c.call("vmcp/servers/list", json!({}))?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "running": true, "health": health, "metrics": metrics, "servers": servers["servers"] })
            )?
        );
        return Ok(());
    }
    let pid = std::fs::read_to_string(home.run_dir().join("vmcp.pid")).unwrap_or_default();
    println!(
        "vmcp is running (pid {}), {}, up {}s, {} client sessions",
        pid.trim(),
        health["status"].as_str().unwrap_or("?"),
        metrics["uptime_seconds"],
        metrics["sessions"]
    );
    print_servers(&servers["servers"]);
    Ok(())
}

pub fn print_servers(servers: &Value) {
    println!(
        "{:<20} {:<10} {:<10} {:<22} {:>8} {:<8} {:>6} {:>8} {:>10}",
        "ID", "TRANSPORT", "STATUS", "HEALTH", "REPLICAS", "ERA", "TOOLS", "PROMPTS", "RESOURCES"
    );
    for s in servers.as_array().into_iter().flatten() {
        let mut health = s["health"].as_str().unwrap_or("-").to_owned();
        if s["crash_loop"] == true {
            health.push_str(" (crash loop)");
        }
        println!(
            "{:<20} {:<10} {:<10} {:<22} {:>8} {:<8} {:>6} {:>8} {:>10}",
            s["id"].as_str().unwrap_or(""),
            s["transport"].as_str().unwrap_or(""),
            s["status"].as_str().unwrap_or(""),
            health,
            format!("{}/{}", s["replicas_ready"], s["replicas"]),
            s["era"].as_str().unwrap_or("-"),
            s["tools"],
            s["prompts"],
            s["resources"]
        );
    }
}

pub fn stop() -> anyhow::Result<()> {
    let home = Home::from_env();
    let pid_file = home.run_dir().join("vmcp.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else {
        println!("vmcp is not running");
        return Ok(());
    };
    let pid: i32 = pid.trim().parse().map_err(|_| anyhow::anyhow!("{} is corrupt", pid_file.display()))?;
    if Control::connect(&home).is_none() {
        println!("vmcp is not running (stale pid file removed)");
        let _ = std::fs::remove_file(&pid_file);
        return Ok(());
    }
    // SAFETY: kill(2) with a pid read from our own pid file, whose gateway answered on our socket.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    for _ in 0..200 {
        if Control::connect(&home).is_none() {
            println!("vmcp stopped");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("vmcp (pid {pid}) did not stop within 10s")
}
