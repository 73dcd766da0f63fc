//! The control socket: `$VMCP_HOME/run/vmcp.sock`, an MCP endpoint (NDJSON, like stdio) for the
//! local user's own tools (`vmcp status`, `vmcp list` on a running gateway).
//!
//! Invariant: only the user who started the gateway can connect: the socket lives in a directory
//! of mode 0700 and is itself 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;
use crate::policy::Caller;

/// Bind the socket (replacing a stale one left by a gateway that died).
pub fn bind(run_dir: &Path) -> std::io::Result<(UnixListener, PathBuf)> {
    std::fs::create_dir_all(run_dir)?;
    std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o700))?;
    let path = run_dir.join("vmcp.sock");
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another gateway is running on {}", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

/// Serve local connections until `stop`.
pub async fn serve(gw: Arc<Gateway>, listener: UnixListener, path: PathBuf, stop: CancellationToken) {
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = stop.cancelled() => break,
        };
        match conn {
            Ok((stream, _)) => {
                let gw = gw.clone();
                tokio::spawn(async move {
                    let (read, write) = stream.into_split();
                    super::stdio::serve(gw, Caller::local_user(), read, write).await;
                });
            }
            Err(e) => tracing::warn!("control socket: {e}"),
        }
    }
    let _ = std::fs::remove_file(&path);
}
