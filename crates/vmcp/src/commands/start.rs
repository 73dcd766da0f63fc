//! `vmcp start`: run the gateway until the client closes stdin or a signal arrives, then stop
//! every backend in order.

use std::path::Path;
use std::time::Duration;

use vmcp_config::ServersFile;
use vmcp_gateway::{Caller, Gateway, front, reload};

pub fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let loaded = super::config::load(config)?;
    crate::logging::init(&loaded.gateway.logging.level);
    let servers = match loaded.servers {
        Some(file) => file.servers,
        None => {
            tracing::info!("no {} yet; mounting the built-in servers", loaded.servers_path.display());
            let raw = crate::defaults::servers(&loaded.home)?;
            ServersFile::from_raw(Path::new("<built-in default>"), raw)?.servers
        }
    };
    let grace = Duration::from_secs_f64(loaded.gateway.shutdown_grace_secs);
    let servers_path = loaded.servers_path.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let gw = Gateway::start(loaded.gateway, servers);
        let stop_watch = tokio_util::sync::CancellationToken::new();
        tokio::spawn(reload::watch(gw.clone(), servers_path, Duration::from_secs(1), stop_watch.clone()));
        let serve =
            front::stdio::serve(gw.clone(), Caller::local_user(), tokio::io::stdin(), tokio::io::stdout());
        tokio::select! {
            () = serve => tracing::info!("client disconnected; shutting down"),
            signal = shutdown_signal() => tracing::info!("{signal}; shutting down"),
        }
        stop_watch.cancel();
        if tokio::time::timeout(grace + Duration::from_secs(2), gw.shutdown()).await.is_err() {
            tracing::warn!("servers did not stop in time");
        }
    });
    // stdin's reader thread may still be blocked in read(2); don't wait for it.
    rt.shutdown_timeout(Duration::from_millis(50));
    Ok(())
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
