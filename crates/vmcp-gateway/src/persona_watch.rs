//! Persona changes while running: watch the personas directory and swap in a new snapshot, so
//! `vmcp persona ...` (and revoked keys) apply to connected clients without a restart.
//!
//! Like `reload`, this polls (`watch::poll`): [`PersonaStore::fingerprint`] (names, sizes,
//! mtimes and inodes of the files) once per interval. A persona whose file does not load is left
//! out of the snapshot (its callers are refused) and logged. Sessions acting as a persona whose
//! access changed get `notifications/{tools,prompts,resources}/list_changed`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vmcp_persona::{PersonaError, PersonaStore, Personas};

use crate::gateway::Gateway;
use crate::policy::{Access, PersonaBook};

/// Watch `store` until `stop`; swap each new snapshot into `book` and tell affected sessions.
pub async fn watch(
    gw: Arc<Gateway>,
    store: PersonaStore,
    book: Arc<PersonaBook>,
    interval: Duration,
    stop: CancellationToken,
) {
    let loaded = book.load().fingerprint();
    let read = store.clone();
    let stamp = move || store.fingerprint();
    let apply = |next| {
        swap(&gw, &book, next);
        std::future::ready(())
    };
    crate::watch::poll(interval, stop, Some(loaded), stamp, move || read.snapshot(), apply).await;
}

/// Swap a snapshot read after a change into `book` and tell the affected sessions.
fn swap(gw: &Gateway, book: &PersonaBook, next: Result<Arc<Personas>, PersonaError>) {
    let next = match next {
        Ok(next) => next,
        Err(e) => return tracing::error!("cannot read personas: {e}; keeping the ones loaded"),
    };
    for problem in next.problems() {
        tracing::error!("persona not loaded (its callers are refused): {problem}");
    }
    tracing::info!("personas changed; {} loaded", next.len());
    let old = book.replace(next.clone());
    notify_changed(gw, &old, &next);
}

/// Did what persona `name` may use change between two snapshots?
fn view_changed(old: &Personas, new: &Personas, name: &str) -> bool {
    match (old.get(name), new.get(name)) {
        (None, None) => false,
        (Some(a), Some(b)) => {
            a.raw().enabled_servers != b.raw().enabled_servers || a.raw().rules != b.raw().rules
        }
        _ => true,
    }
}

fn notify_changed(gw: &Gateway, old: &Personas, new: &Personas) {
    for s in gw.sessions() {
        let Access::Persona(p) = &s.caller.access else { continue };
        if !view_changed(old, new, &p.name) {
            continue;
        }
        for method in crate::listen::LIST_CHANGES {
            s.notify(method, None, None);
        }
    }
}
