//! Mount and unmount while running: watch the registry file and apply what changed.
//!
//! Polling the file's modification time and size once a second is enough for a file people and
//! `vmcp install`/`mount`/`unmount` edit, and needs no platform watcher. A file that fails to
//! validate is reported and ignored: the running set stays as it was.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use vmcp_config::ServersFile;

use crate::gateway::Gateway;

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watch `path` until `stop`; apply each valid change to `gw`.
pub async fn watch(gw: Arc<Gateway>, path: PathBuf, interval: Duration, stop: CancellationToken) {
    let mut last = stamp(&path);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        match ServersFile::load(&path) {
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
}
