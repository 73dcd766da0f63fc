//! `vmcp start`: run the gateway's fronts (stdio, Streamable HTTP + legacy SSE, WebSocket)
//! until the stdio client closes its input or a signal arrives, then drain and stop every
//! backend in order.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vmcp_config::{GatewayConfig, ServersFile};
use vmcp_gateway::{Caller, Gateway, front, reload};

use crate::UsageError;

/// Front overrides from the command line.
pub struct Fronts {
    pub http: Option<String>,
    pub ws: Option<String>,
    pub no_stdio: bool,
    pub identity: crate::cli::Identity,
}

fn apply_overrides(cfg: &mut GatewayConfig, fronts: &Fronts) -> anyhow::Result<()> {
    let split = |v: &str| -> anyhow::Result<(String, u16)> {
        let addr: SocketAddr =
            v.parse().map_err(|_| UsageError(format!("`{v}` is not HOST:PORT (e.g. 127.0.0.1:3000)")))?;
        Ok((addr.ip().to_string(), addr.port()))
    };
    if let Some(v) = &fronts.http {
        (cfg.http.host, cfg.http.port) = split(v)?;
        cfg.http.enabled = true;
    }
    if let Some(v) = &fronts.ws {
        (cfg.websocket.host, cfg.websocket.port) = split(v)?;
        cfg.websocket.enabled = true;
    }
    if fronts.no_stdio {
        cfg.stdio_enabled = false;
    }
    Ok(())
}

async fn bind(
    host: &str,
    port: u16,
    what: &str,
    auth: &super::identity::NetworkAuth,
) -> anyhow::Result<TcpListener> {
    // An IPv6 address (`::1`, as `--http [::1]:3000` leaves it) needs brackets before a port.
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    auth.check_bind(host, &addr, what)?;
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for {what}: {e}"))?;
    auth.log_bound(listener.local_addr()?, what);
    Ok(listener)
}

pub fn run(config: Option<&Path>, fronts: Fronts) -> anyhow::Result<()> {
    let mut loaded = super::config::load(config)?;
    vmcp_config::secrets::install(vmcp_config::Secrets::load(&loaded.home.secrets_file())?);
    apply_overrides(&mut loaded.gateway, &fronts)?;
    crate::logging::init(&loaded.gateway.logging.level);
    let servers = match loaded.servers.take() {
        Some(file) => file.servers,
        None => {
            tracing::info!("no {} yet; mounting the built-in servers", loaded.servers_path.display());
            let raw = crate::defaults::servers(&loaded.home)?;
            ServersFile::from_raw(Path::new("<built-in default>"), raw)?.servers
        }
    };
    let cfg = loaded.gateway;
    if !cfg.stdio_enabled && !cfg.http.enabled && !cfg.websocket.enabled {
        return Err(UsageError("every front is disabled; enable stdio, http or websocket".into()).into());
    }
    let identity = super::identity::Identity::load(&loaded.home, &fronts.identity)?;
    let grace = Duration::from_secs_f64(cfg.shutdown_grace_secs);
    let book = identity.book();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_threads)
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let (http, ws) = (cfg.http.clone(), cfg.websocket.clone());
        let stdio = cfg.stdio_enabled;
        let http_listener =
            if http.enabled { Some(bind(&http.host, http.port, "the HTTP front", &identity.network).await?) } else { None };
        let ws_listener =
            if ws.enabled { Some(bind(&ws.host, ws.port, "the WebSocket front", &identity.network).await?) } else { None };
        let control = front::control::bind(&loaded.home.run_dir()).map_err(|e| {
            anyhow::anyhow!("cannot open the control socket in {}: {e}", loaded.home.run_dir().display())
        })?;
        let pid_file = loaded.home.run_dir().join("vmcp.pid");
        vmcp_config::write_atomic(&pid_file, std::process::id().to_string().as_bytes())?;
        // Before any server starts: it is what takes their grandchildren down if vmcp is killed.
        match std::env::current_exe() {
            Ok(exe) => {
                if let Err(e) = vmcp_gateway::upstream::reaper::start(&exe) {
                    tracing::warn!("cannot start the orphan watcher ({e}); only direct children die with vmcp");
                }
            }
            Err(e) => tracing::warn!("cannot find vmcp's own binary ({e}); only direct children die with vmcp"),
        }
        let gw = Gateway::start(cfg, servers);
        let stop = CancellationToken::new();
        let mut fronts = tokio::task::JoinSet::new();
        let stdio_caller = identity.attach(&gw, &stop, &mut fronts);
        {
            let (gw, stop) = (gw.clone(), stop.clone());
            fronts.spawn(front::control::serve(gw, control.0, control.1, stop));
        }
        fronts.spawn(reload::watch(
            gw.clone(),
            loaded.servers_path.clone(),
            Duration::from_secs(1),
            stop.clone(),
        ));
        if let Some(l) = http_listener {
            let (gw, stop) = (gw.clone(), stop.clone());
            fronts.spawn(async move { log_err(front::http::serve(gw, http, l, stop).await) });
        }
        if let Some(l) = ws_listener {
            let (gw, stop) = (gw.clone(), stop.clone());
            fronts.spawn(async move { log_err(front::ws::serve(gw, ws, l, stop).await) });
        }
        tokio::select! {
            () = serve_stdio(gw.clone(), stdio, stdio_caller) => tracing::info!("client disconnected; shutting down"),
            signal = shutdown_signal() => tracing::info!("{signal}; shutting down"),
        }
        drain(&gw, stop, fronts, grace).await;
        let _ = std::fs::remove_file(&pid_file);
        anyhow::Ok(())
    });
    // stdin's reader thread (a terminal or file on stdin) may still be blocked in read(2); don't
    // wait for it.
    rt.shutdown_timeout(Duration::from_millis(50));
    // Every refusal recorded until now is in the audit log before vmcp exits.
    book.flush_audit(grace + Duration::from_secs(2));
    result
}

async fn serve_stdio(gw: Arc<Gateway>, enabled: bool, caller: Caller) {
    if enabled {
        let (input, output) = front::stdio::process_stdio();
        front::stdio::serve(gw, caller, input, output).await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// Stop accepting, give in-flight requests the grace period, then stop the backends.
async fn drain(
    gw: &Arc<Gateway>,
    stop: CancellationToken,
    mut fronts: tokio::task::JoinSet<()>,
    grace: Duration,
) {
    stop.cancel();
    let drained = tokio::time::timeout(grace, async { while fronts.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("requests still running after {grace:?}; closing them");
        fronts.abort_all();
    }
    if tokio::time::timeout(grace + Duration::from_secs(2), gw.shutdown()).await.is_err() {
        tracing::warn!("servers did not stop in time");
    }
}

fn log_err(r: std::io::Result<()>) {
    if let Err(e) = r {
        tracing::error!("front failed: {e}");
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        std::future::pending::<()>().await;
        return "";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
