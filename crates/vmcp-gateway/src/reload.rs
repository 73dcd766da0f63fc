//! Mount and unmount while running: watch the registry file and apply what changed.
//!
//! The file's modification time and size are polled once a second (`watch::poll`), which is
//! enough for a file people and `vmcp install`/`mount`/`unmount` edit. A file that fails to
//! validate is reported and ignored: the running set stays as it was.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vmcp_config::{ConfigError, ServersFile};

use crate::gateway::Gateway;
use crate::watch;

/// Watch `path` until `stop`; apply each valid change to `gw`.
pub async fn watch(gw: Arc<Gateway>, path: PathBuf, interval: Duration, stop: CancellationToken) {
    let (stamped, read) = (path.clone(), path.clone());
    let apply = |loaded: Result<Option<ServersFile>, ConfigError>| {
        let (gw, path) = (gw.clone(), path.clone());
        async move {
            match loaded {
                Ok(Some(file)) => {
                    tracing::info!("{} changed; applying", path.display());
                    gw.apply(file.servers).await;
                }
                Ok(None) => {
                    tracing::warn!("{} was removed; keeping the servers that are mounted", path.display())
                }
                Err(e) => tracing::error!("{e}; keeping the servers that are mounted"),
            }
        }
    };
    let stamp = move || watch::file_stamp(&stamped);
    watch::poll(interval, stop, None, stamp, move || ServersFile::load(&read), apply).await;
}
