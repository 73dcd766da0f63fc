//! Watching files on disk by polling, for changes that apply while vMCP runs (`reload`: the
//! servers registry; `persona_watch`: the personas directory).
//!
//! Every interval, take a cheap fingerprint of the files (sizes and modification times); when
//! it differs from the last one, read them and hand what was read to the watcher. Both the
//! fingerprint and the read touch the file system, so they run on the blocking pool, never on
//! the async runtime's threads. Polling once a second is enough for files that people and
//! `vmcp` commands edit, and needs no platform watcher.
//!
//! Invariant: the watcher's callback runs on the watching task, one change at a time, so a
//! slow apply delays the next poll instead of racing it.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// A file's modification time and length, or `None` when it cannot be read (e.g. missing).
pub fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Poll until `stop`: every `interval`, take `stamp()`; when it differs from the last one, take
/// `read()` and await `changed` with it. `last`: the fingerprint of what the caller already has
/// (`None`: take one first, so only later changes count). `stamp` and `read` run on the
/// blocking pool.
pub async fn poll<K, T, Fut>(
    interval: Duration,
    stop: CancellationToken,
    last: Option<K>,
    stamp: impl Fn() -> K + Send + Sync + 'static,
    read: impl Fn() -> T + Send + Sync + 'static,
    mut changed: impl FnMut(T) -> Fut,
) where
    K: PartialEq + Clone + Send + 'static,
    T: Send + 'static,
    Fut: Future<Output = ()>,
{
    let files = Arc::new((stamp, read));
    let mut last = match last {
        Some(k) => k,
        None => {
            let files = files.clone();
            match tokio::task::spawn_blocking(move || (files.0)()).await {
                Ok(k) => k,
                Err(e) => return tracing::error!("cannot watch files: {e}"),
            }
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let (files, prev) = (files.clone(), last.clone());
        let tick = tokio::task::spawn_blocking(move || {
            let now = (files.0)();
            let read = (now != prev).then(|| (files.1)());
            (now, read)
        });
        match tick.await {
            Ok((now, read)) => {
                last = now;
                if let Some(t) = read {
                    changed(t).await;
                }
            }
            // A panic in the file system code: keep the last fingerprint and try again.
            Err(e) => tracing::error!("watching files: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A "file" whose fingerprint and content the test sets; `poll` reports each change once.
    #[tokio::test(start_paused = true)]
    async fn a_change_is_read_and_reported_once_and_stop_ends_the_watch() {
        let version = Arc::new(AtomicU64::new(1));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (v1, v2, seen, stop) = (version.clone(), version.clone(), seen.clone(), stop.clone());
            async move {
                poll(
                    Duration::from_secs(1),
                    stop,
                    None,
                    move || v1.load(Ordering::SeqCst),
                    move || format!("content {}", v2.load(Ordering::SeqCst)),
                    |t| {
                        seen.lock().unwrap().push(t);
                        async {}
                    },
                )
                .await
            }
        });
        let report = |n: usize| {
            let seen = seen.clone();
            async move {
                // Each poll needs the blocking pool, which paused time does not drive: step until
                // the report is there, with a bound on the steps.
                for _ in 0..1000 {
                    if seen.lock().unwrap().len() >= n {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    tokio::task::yield_now().await;
                }
                panic!("no report {n}");
            }
        };
        // Unchanged: nothing is read.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(seen.lock().unwrap().is_empty(), "{:?}", seen.lock().unwrap());
        version.store(2, Ordering::SeqCst);
        report(1).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        version.store(3, Ordering::SeqCst);
        report(2).await;
        assert_eq!(*seen.lock().unwrap(), ["content 2", "content 3"]);
        stop.cancel();
        task.await.unwrap();
    }
}
