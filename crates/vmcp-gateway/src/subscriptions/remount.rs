//! A live remount's part of the subscription table (`Gateway::apply`): every subscription held
//! at a server replaced by a changed spec is made at its successor before the swap, and moves
//! there in the same lock step; an unmounted server's are dropped.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::AbortHandle;

use super::{Counted, End, Failure, Held, Key, adopt, end_at, end_at_none, held, subscribe_at};
use crate::gateway::{Gateway, Mounted};
use crate::upstream::{Upstream, UpstreamError};

/// A server leaving the mounted set, with the server taking its place under the same id (its
/// spec changed) or none (unmounted).
pub(crate) type Leaving = (Arc<Mounted>, Option<Arc<Mounted>>);

/// A backend subscription `remount` made at a new server: the connection it was made at, and
/// how it went.
type Made = (Arc<Upstream>, Result<Option<AbortHandle>, Failure>);

/// Swap in a new mounted set (`swap`, called once, under `rebuild` and the table's lock) where
/// the servers in `leaving` are replaced or gone. Before it, every subscription sessions hold at
/// a replaced server is made at its successor, at the replica a fresh subscribe of each session
/// would choose, once per (replica, URI); in the same lock step as the swap the table moves to
/// the successor, so no session subscribes at the old server after its entries moved, and none
/// is left out. Then the old server's subscriptions are ended (a legacy `resources/unsubscribe`
/// only while it still runs). An unmounted server's entries are dropped, and its sessions no
/// longer count as subscribed. A subscription that cannot be made again is logged; its sessions
/// stay subscribed through vMCP, and the successor's supervisor makes it when that replica
/// restarts.
pub(crate) async fn remount(
    gw: &Gateway,
    rebuild: &tokio::sync::Mutex<()>,
    leaving: &[Leaving],
    swap: impl FnOnce(),
) {
    // (session, server) → the successor's replica for that session: chosen once.
    let mut chosen = HashMap::new();
    let mut made: HashMap<Key, Made> = HashMap::new();
    let (_guard, mut table) = loop {
        // Subscribes still being made at a leaving server end first: their outcome decides
        // whether the session is in the table.
        let pending = held(gw)
            .pending
            .iter()
            .filter(|(k, _)| leaving.iter().any(|(old, _)| old.spec.id == k.0))
            .map(|(_, p)| p.clone())
            .collect::<Vec<_>>();
        for mut rx in pending {
            let _ = rx.wait_for(Option::is_some).await;
        }
        let todo = missing(&wanted(&held(gw), leaving, &mut chosen), &made);
        make(gw, todo, &mut made).await;
        let guard = rebuild.lock().await;
        let table = held(gw);
        let settled = !table.pending.keys().any(|k| leaving.iter().any(|(old, _)| old.spec.id == k.0));
        if settled && missing(&wanted(&table, leaving, &mut chosen), &made).is_empty() {
            break (guard, table);
        }
    };
    swap();
    let (ends, dropped) = move_table(&mut table, leaving, &chosen, made);
    drop(table);
    ends.into_iter().for_each(end_at);
    for (session, uri, token) in dropped {
        if let Some(s) = gw.session(session) {
            s.forget(&uri, token);
        }
    }
}

/// The backend subscriptions the successors must hold for the sessions in the table now, each
/// with the connection of its replica.
fn wanted(
    held: &Held,
    leaving: &[Leaving],
    chosen: &mut HashMap<(u64, String), usize>,
) -> HashMap<Key, Arc<Upstream>> {
    let mut want = HashMap::new();
    for (session, server, uri) in held.by_session.keys() {
        let Some(next) = leaving.iter().find(|(old, _)| old.spec.id == *server).and_then(|(_, n)| n.as_ref())
        else {
            continue;
        };
        let replica = *chosen.entry((*session, server.clone())).or_insert_with(|| choose(next, *session));
        let up = next.replicas[replica].up();
        want.insert((server.clone(), replica, uri.clone()), up);
    }
    want
}

/// The replica a fresh subscribe of `session` would choose at `m`; with none to choose (none
/// ready), the one its affinity points to when all are, whose supervisor makes the subscription
/// once it is ready.
pub(super) fn choose(m: &Mounted, session: u64) -> usize {
    m.affine(crate::resilience::affinity_key(session))
}

/// What `want` holds that was not made at the connection its replica has now.
fn missing(want: &HashMap<Key, Arc<Upstream>>, made: &HashMap<Key, Made>) -> Vec<(Key, Arc<Upstream>)> {
    want.iter()
        .filter(|(k, up)| !made.get(*k).is_some_and(|(at, _)| Arc::ptr_eq(at, up)))
        .map(|(k, up)| (k.clone(), up.clone()))
        .collect()
}

/// Make `todo` at the successors, in parallel; what was made at a connection since replaced
/// is ended.
async fn make(gw: &Gateway, todo: Vec<(Key, Arc<Upstream>)>, made: &mut HashMap<Key, Made>) {
    let outcomes = futures_util::future::join_all(todo.iter().map(|((_, _, uri), up)| async {
        if !up.is_ready() {
            return Err(Failure::Upstream(UpstreamError::Closed(up.id().to_owned())));
        }
        subscribe_at(gw, up, uri).await
    }))
    .await;
    for ((key, up), outcome) in todo.into_iter().zip(outcomes) {
        if let Some((_, Ok(Some(old)))) = made.insert(key, (up, outcome)) {
            old.abort();
        }
    }
}

/// The table step of `remount`, right after the swap: the leaving servers' entries go; their
/// sessions' move to the successor's replicas, with what `made` holds there. Returns the
/// subscriptions to end (the old server's, and any made for sessions gone since) and the
/// (session, uri, token) of each subscription to an unmounted server.
fn move_table(
    held: &mut Held,
    leaving: &[Leaving],
    chosen: &HashMap<(u64, String), usize>,
    made: HashMap<Key, Made>,
) -> (Vec<End>, Vec<(u64, String, u64)>) {
    let (mut ends, mut dropped) = (Vec::new(), Vec::new());
    for (old, next) in leaving {
        let server = &old.spec.id;
        let keys: Vec<Key> = held.counts.keys().filter(|k| k.0 == *server).cloned().collect();
        for key in keys {
            held.counts.remove(&key);
            let listen = held.listens.remove(&key);
            match old.replicas.get(key.1) {
                Some(r) => ends.push(held.end(r.up(), key.2, listen)),
                None => end_at_none(listen),
            }
        }
        let sessions: Vec<(u64, String, String)> =
            held.by_session.keys().filter(|k| k.1 == *server).cloned().collect();
        let before = dropped.len();
        for entry in sessions {
            let Some(Counted { token, .. }) = held.by_session.remove(&entry) else { continue };
            let (session, server, uri) = entry;
            let Some(&replica) = next.as_ref().and(chosen.get(&(session, server.clone()))) else {
                dropped.push((session, uri, token));
                continue;
            };
            *held.counts.entry((server.clone(), replica, uri.clone())).or_insert(0) += 1;
            held.by_session.insert((session, server, uri), Counted { replica, token });
        }
        if next.is_none() {
            tracing::info!(
                server = %server,
                "unmounted: dropped {} session subscription(s) to its resources", dropped.len() - before
            );
        }
    }
    let mut restored = HashMap::<String, usize>::new();
    for (key, (up, outcome)) in made {
        let server = key.0.clone();
        if adopt(held, key, &up, outcome, &mut ends, "remount") {
            *restored.entry(server).or_default() += 1;
        }
    }
    for (server, n) in restored {
        tracing::info!(server = %server, "remounted: {n} resource subscription(s) made at the new server");
    }
    (ends, dropped)
}
