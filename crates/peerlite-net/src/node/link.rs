//! One connection's task: every session and query between this device and one peer.
//!
//! The task owns the connection and a [`Core`] (the dispatcher and what waits on it). Each
//! event — a frame, a command from the node, a silence tick, shutdown — is handled by the
//! core on tokio's blocking pool (it reads and writes SQLite), moved there and back by value,
//! so no lock is held across the work and the async threads only move bytes. What the core
//! returns is sent in order; sending waits while the peer is slow to read (backpressure).
//!
//! A payload that is not a message ends this connection (logged with the peer and why); a
//! message that is wrong for its session ends that session with an `Abort`, as the core does.
//! When the connection dies, its running sessions end with [`SyncStatus::Unreachable`] and
//! the network code of why; queries waiting on it fail the same way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use peerlite::RdbPredicates;
use peerlite::sync::{
    Abort, DeviceLevel as PeerLevel, DeviceResult, Dispatcher, Finished, MessageV1, Peer, Query,
    QueryReply, QueryRows, SyncMessage, SyncMode, SyncStatus, answer_query,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Inner, NodeEvent};
use crate::error::{Error, Result};
use crate::{Connection, DeviceId, PeerIdentity};

/// What the node asks of a connection.
pub(crate) enum Command {
    /// Start a session; its result goes to `reply` (a dropped receiver cancels it).
    Start {
        store: String,
        mode: SyncMode,
        predicates: Option<RdbPredicates>,
        reply: oneshot::Sender<DeviceResult>,
    },
    /// Ask the peer a query; the answer goes to `reply`.
    Query {
        store: String,
        predicates: RdbPredicates,
        columns: Vec<String>,
        reply: oneshot::Sender<Result<QueryRows>>,
    },
    /// Close the connection now, whatever runs on it, for this reason: the peer is no longer
    /// trusted as it was when it connected (removed from the trust store, or its level
    /// changed), or it opened more connections than a device may hold.
    Revoke(String),
    /// The peer was removed from the trust store: its running sessions end with the refusal
    /// a handshake would give it (17060002: this device refuses it), told before the
    /// connection closes, and the connection closes for this reason.
    Untrust(String),
}

/// Sessions one connection runs at once: a peer cannot make this device hold more.
const MAX_SESSIONS: usize = 64;

/// What handling one event produced.
#[derive(Default)]
struct Out {
    /// Encoded messages to send, in order.
    frames: Vec<Vec<u8>>,
    /// Close the connection, for this reason.
    fatal: Option<String>,
}

impl Out {
    fn push(&mut self, msg: &SyncMessage) {
        match msg.encode() {
            Ok(bytes) => self.frames.push(bytes),
            Err(e) => self.fatal = Some(format!("cannot encode a message: {e}")),
        }
    }

    fn extend(&mut self, msgs: impl IntoIterator<Item = SyncMessage>) {
        for m in msgs {
            self.push(&m);
        }
    }
}

/// The sessions and queries of one connection.
struct Core {
    node: Arc<Inner>,
    device: DeviceId,
    peer: Peer,
    dispatcher: Dispatcher,
    /// Sessions this device started, by id: where their results go.
    starts: HashMap<u64, oneshot::Sender<DeviceResult>>,
    /// Queries asked of the peer, by id.
    queries: HashMap<u64, oneshot::Sender<Result<QueryRows>>>,
    /// The store of each session, for the log.
    store_of: HashMap<u64, String>,
    /// Sessions that heard from the peer since the last tick.
    heard: HashSet<u64>,
    next_query: u64,
    stopping: bool,
}

/// The peer as the sync core knows it: the proven id and the level from our trust store.
fn peer_of(identity: &PeerIdentity) -> Peer {
    Peer::new(
        identity.id.to_string(),
        PeerLevel::from_u8(identity.level.as_u8()).unwrap_or(PeerLevel::Sl1),
    )
}

impl Core {
    fn new(node: Arc<Inner>, identity: &PeerIdentity) -> Core {
        let config = &node.config;
        let dispatcher = Dispatcher::new()
            .batch_rows(config.batch_rows)
            .compression(config.compression)
            .max_silences(config.max_silences);
        Core {
            device: identity.id,
            peer: peer_of(identity),
            dispatcher,
            starts: HashMap::new(),
            queries: HashMap::new(),
            store_of: HashMap::new(),
            heard: HashSet::new(),
            next_query: 1,
            stopping: false,
            node,
        }
    }

    fn on_payload(&mut self, bytes: &[u8]) -> Out {
        let mut out = Out::default();
        let msg = match SyncMessage::decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                out.fatal = Some(e.to_string());
                return out;
            }
        };
        let SyncMessage::V1(m) = &msg;
        match m {
            MessageV1::Query(q) => {
                let reply = self.answer(q);
                out.push(&SyncMessage::V1(MessageV1::QueryReply(reply)));
                return out;
            }
            MessageV1::QueryReply(r) => {
                if let Some(waiting) = self.queries.remove(&r.session) {
                    let own = self.node.endpoint.level();
                    let rows = r
                        .clone()
                        .into_rows_for(&self.peer.device, &own.to_string(), own.highest_label())
                        .map_err(Error::Store);
                    let _ = waiting.send(rows);
                }
                return out;
            }
            MessageV1::Hello(h) if !self.dispatcher.holds(&self.peer.device, h.session) => {
                let refused = if self.stopping {
                    Some((
                        Error::ShuttingDown.code(),
                        "the device is shutting down".to_owned(),
                    ))
                } else if self.dispatcher.running() >= MAX_SESSIONS {
                    Some((
                        Error::TooManySessions.code(),
                        format!("{MAX_SESSIONS} sessions already run on this connection"),
                    ))
                } else {
                    None
                };
                if let Some((code, message)) = refused {
                    out.push(&SyncMessage::V1(MessageV1::Abort(Abort {
                        session: h.session,
                        code,
                        message,
                    })));
                    return out;
                }
                self.store_of.insert(h.session, h.store.clone());
            }
            _ => {}
        }
        self.heard.insert(msg.session());
        let node = Arc::clone(&self.node);
        let replies = self.dispatcher.deliver(&self.peer, &msg, |h| {
            node.served(&h.store).map(|s| Arc::clone(&s.surface))
        });
        out.extend(replies);
        self.reap();
        // A Hello that opened no session (no such store here) leaves no name behind.
        if !self.dispatcher.holds(&self.peer.device, msg.session()) {
            self.store_of.remove(&msg.session());
        }
        out
    }

    /// A query from the peer, answered by the store it names (validated there, in the core).
    /// Logged like a finished sync: one line per query, a refusal as a warning with its code
    /// and reason (the asker's hint sends its user to this log).
    fn answer(&self, q: &Query) -> QueryReply {
        let reply = match self.node.served(&q.store) {
            Some(s) => answer_query(s.surface.as_ref(), &self.peer, q),
            None => QueryReply {
                session: q.session,
                code: SyncStatus::Incompatible.code(),
                message: format!("no store {:?} is served here", q.store),
                columns: Vec::new(),
                rows: Vec::new(),
            },
        };
        let (peer, store, table) = (&self.peer.device, &q.store, &q.filter.table);
        if reply.code == 0 {
            tracing::info!(%peer, %store, %table, rows = reply.rows.len(), "remote query answered");
        } else {
            tracing::warn!(%peer, %store, %table, code = reply.code, reason = %reply.message, "remote query refused");
        }
        reply
    }

    fn on_command(&mut self, command: Command) -> Out {
        let mut out = Out::default();
        match command {
            Command::Revoke(reason) => {
                out.fatal = Some(reason);
            }
            Command::Untrust(reason) => {
                out = self.end_all(
                    SyncStatus::Untrusted(Error::UntrustedPeer { id: self.device }.code()),
                    Error::RefusedByPeer {
                        reason: String::new(),
                    }
                    .code(),
                    &format!("{} no longer trusts this device", self.node.endpoint.id()),
                    "no longer trusted",
                );
                out.fatal = Some(reason);
            }
            Command::Start {
                store,
                mode,
                predicates,
                reply,
            } => {
                let Some(served) = self.node.served(&store) else {
                    let e = Error::NotServed { store };
                    let _ = reply.send(self.failed(SyncStatus::Failed(e.code()), &e.to_string()));
                    return out;
                };
                match self
                    .dispatcher
                    .start(served.surface, &self.peer, mode, predicates.as_ref())
                {
                    Ok(hello) => {
                        self.starts.insert(hello.session(), reply);
                        self.store_of.insert(hello.session(), store);
                        out.push(&hello);
                    }
                    Err(e) => {
                        let status = SyncStatus::from_code(e.code());
                        let _ = reply.send(self.failed(status, &e.to_string()));
                    }
                }
            }
            Command::Query {
                store,
                predicates,
                columns,
                reply,
            } => {
                let id = self.next_query;
                self.next_query += 1;
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                let query = Query::new(id, &store, &predicates, &columns);
                self.queries.insert(id, reply);
                out.push(&SyncMessage::V1(MessageV1::Query(query)));
            }
        }
        out
    }

    fn failed(&self, status: SyncStatus, message: &str) -> DeviceResult {
        DeviceResult {
            device: self.peer.device.clone(),
            status,
            message: Some(message.to_owned()),
            ..Default::default()
        }
    }

    /// A silence tick: sessions whose starter gave up end (the peer is told), quiet sessions
    /// send their last message again, and ones quiet too long time out.
    fn on_tick(&mut self) -> Out {
        let mut out = Out::default();
        let abandoned: Vec<u64> = self
            .starts
            .iter()
            .filter(|(_, reply)| reply.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            self.dispatcher
                .drop_session(&self.peer.device, id, SyncStatus::TimedOut);
            out.push(&SyncMessage::V1(MessageV1::Abort(Abort {
                session: id,
                code: SyncStatus::TimedOut.code(),
                message: "the device that started the session stopped waiting for it".into(),
            })));
        }
        self.queries.retain(|_, reply| !reply.is_closed());
        let heard = std::mem::take(&mut self.heard);
        let again = self.dispatcher.silence(|_, id| !heard.contains(&id));
        out.extend(again.into_iter().map(|(_, m)| m));
        self.reap();
        out
    }

    /// The connection is gone: everything on it ends with `status`.
    fn on_closed(&mut self, status: SyncStatus, reason: &str) {
        self.dispatcher.abandon_all(status);
        self.reap_with(Some(reason));
        for (_, waiting) in self.queries.drain() {
            let _ = waiting.send(Err(Error::Closed {
                reason: reason.to_owned(),
            }));
        }
    }

    /// Shutdown's end: sessions still running are aborted and their peers told why.
    fn on_stop(&mut self) -> Out {
        let code = Error::ShuttingDown.code();
        self.end_all(
            SyncStatus::Failed(code),
            code,
            "the device is shutting down",
            "shutting down",
        )
    }

    /// Ends every running session with `status` here, and tells the peer with an `Abort` of
    /// `code` and `message`; `reason` goes to this side's report.
    fn end_all(&mut self, status: SyncStatus, code: u32, message: &str, reason: &str) -> Out {
        let mut out = Out::default();
        self.dispatcher.abandon_all(status);
        let finished = self.dispatcher.take_finished();
        for f in &finished {
            if f.result.status == status {
                out.push(&SyncMessage::V1(MessageV1::Abort(Abort {
                    session: f.session,
                    code,
                    message: message.to_owned(),
                })));
            }
        }
        for f in finished {
            self.report(f, Some(reason));
        }
        out
    }

    fn reap(&mut self) {
        self.reap_with(None);
    }

    fn reap_with(&mut self, reason: Option<&str>) {
        for f in self.dispatcher.take_finished() {
            self.report(f, reason);
        }
    }

    /// Logs a finished session, tells the node and whoever started it.
    fn report(&mut self, f: Finished, reason: Option<&str>) {
        let store = self.store_of.remove(&f.session).unwrap_or_default();
        let mut result = f.result;
        // A network code a peer's Abort carried reads as the status it stands for.
        result.status = super::outbound::status_of_code(result.status);
        if let (Some(reason), None) = (reason, &result.message) {
            result.message = Some(reason.to_owned());
        }
        let r = &result;
        if r.status.is_ok() {
            tracing::info!(
                peer = %self.device, store = %store, session = f.session, initiator = f.initiator,
                status = %r.status, sent = r.sent, received = r.received, conflicts = r.conflicts,
                "sync finished"
            );
        } else {
            tracing::warn!(
                peer = %self.device, store = %store, session = f.session, initiator = f.initiator,
                status = %r.status, code = r.status.code(), sent = r.sent, received = r.received,
                reason = r.message.as_deref().unwrap_or_default(),
                "sync finished"
            );
        }
        let _ = self.node.events.send(NodeEvent::SyncFinished {
            device: self.device,
            store,
            initiator: f.initiator,
            result: result.clone(),
        });
        if let Some(reply) = self.starts.remove(&f.session) {
            let _ = reply.send(result);
        }
    }
}

/// Runs `work` on the core on the blocking pool; `None` if it panicked (the core is lost
/// with it and the connection ends).
async fn blocking<R: Send + 'static>(
    core: &mut Option<Core>,
    work: impl FnOnce(&mut Core) -> R + Send + 'static,
) -> Option<R> {
    let mut c = core.take()?;
    match tokio::task::spawn_blocking(move || {
        let r = work(&mut c);
        (c, r)
    })
    .await
    {
        Ok((c, r)) => {
            *core = Some(c);
            Some(r)
        }
        Err(e) => {
            tracing::error!(%e, "a connection's work failed");
            None
        }
    }
}

enum Event {
    Frame(Vec<u8>),
    Closed(Error),
    Command(Command),
    Tick,
    Stop,
    GraceOver,
}

/// The task of one connection.
pub(crate) async fn run(
    node: Arc<Inner>,
    mut conn: Connection,
    mut commands: mpsc::Receiver<Command>,
    serial: u64,
) {
    let identity = conn.peer().clone();
    let device = identity.id;
    let remote = conn.remote_addr();
    let mut core = Some(Core::new(Arc::clone(&node), &identity));
    let mut stop = node.stop.subscribe();
    let silence = node.config.silence;
    let mut tick = tokio::time::interval_at(Instant::now() + silence, silence);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut grace_over = far;
    let mut stopping = false;
    let reason = loop {
        let event = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s), if !stopping => Event::Stop,
            _ = tokio::time::sleep_until(grace_over), if stopping => Event::GraceOver,
            // Before frames: a peer streaming without pause must not starve the node's
            // commands (a revocation above all).
            Some(command) = commands.recv(), if !stopping => Event::Command(command),
            frame = conn.recv() => match frame {
                Ok(bytes) => Event::Frame(bytes),
                Err(e) => Event::Closed(e),
            },
            _ = tick.tick() => Event::Tick,
        };
        let out = match event {
            Event::Frame(bytes) => blocking(&mut core, move |c| c.on_payload(&bytes)).await,
            Event::Command(command) => blocking(&mut core, move |c| c.on_command(command)).await,
            Event::Tick => blocking(&mut core, Core::on_tick).await,
            Event::Stop => {
                stopping = true;
                grace_over = Instant::now() + node.config.grace;
                commands.close();
                blocking(&mut core, |c| {
                    c.stopping = true;
                    Out::default()
                })
                .await
            }
            Event::GraceOver => blocking(&mut core, Core::on_stop).await,
            Event::Closed(e) => {
                let status = if matches!(e, Error::IdleTimeout { .. }) {
                    SyncStatus::Unreachable(e.code())
                } else {
                    SyncStatus::Unreachable(
                        Error::Closed {
                            reason: String::new(),
                        }
                        .code(),
                    )
                };
                let reason = e.to_string();
                let r = reason.clone();
                blocking(&mut core, move |c| c.on_closed(status, &r)).await;
                break reason;
            }
        };
        let Some(out) = out else {
            break "the connection's work failed".to_owned();
        };
        let mut failed = None;
        for frame in &out.frames {
            if let Err(e) = conn.send(frame).await {
                failed = Some(e);
                break;
            }
        }
        if let Some(fatal) = out.fatal {
            tracing::warn!(device = %node.endpoint.id(), peer = %device, %remote, "closing the connection: {fatal}");
            let r = fatal.clone();
            blocking(&mut core, move |c| {
                c.on_closed(SyncStatus::Protocol, &r);
            })
            .await;
            break fatal;
        }
        if let Some(e) = failed {
            // What the peer sent before the connection closed is still read: its last word
            // (an `Abort` saying it shuts down, or no longer trusts this device) must not be
            // lost because this side's answer found the connection closed first.
            while let Some(bytes) = conn.try_recv() {
                blocking(&mut core, move |c| drop(c.on_payload(&bytes))).await;
            }
            let reason = e.to_string();
            let r = reason.clone();
            blocking(&mut core, move |c| {
                c.on_closed(SyncStatus::Unreachable(e.code()), &r)
            })
            .await;
            break reason;
        }
        if stopping {
            let idle = core.as_ref().is_none_or(|c| c.dispatcher.running() == 0);
            if idle {
                break "this device is shutting down".to_owned();
            }
            if Instant::now() >= grace_over {
                // The grace ran out while handling something else: the sessions still
                // running end as the grace's own end ends them, their peers told why (they
                // would otherwise only see the connection close).
                if let Some(out) = blocking(&mut core, Core::on_stop).await {
                    for frame in &out.frames {
                        if conn.send(frame).await.is_err() {
                            break;
                        }
                    }
                }
                break "this device is shutting down".to_owned();
            }
        }
    };
    tracing::info!(device = %node.endpoint.id(), peer = %device, %remote, %reason, "connection closed");
    node.detach(&device, serial, reason);
    conn.close().await;
}
