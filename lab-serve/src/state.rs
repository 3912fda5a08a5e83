//! What the server knows, and the two loops that keep it current: the probe
//! of every machine each interval (never per request), and the follower of
//! the journals, which turns what another `lab` process journals into
//! events for the live stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use lab_core::orchestrate::replay::Follower;
use lab_core::orchestrate::Event;
use lab_core::status::{self, MachineStatus};
use lab_core::store::history::{History, HistoryCache};
use lab_core::store::now_ms;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::{Fleet, ServeOptions};

/// How often the journals are looked at.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The last probe's result.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When it was taken (the probe ended), milliseconds since the epoch;
    /// `None` before the first probe ended.
    pub probed_at_ms: Option<u64>,
    /// How long the probe took, milliseconds.
    pub probe_ms: Option<u64>,
    /// Every machine, sorted by name.
    pub statuses: Vec<MachineStatus>,
}

/// `/api/status`: the snapshot and the interval.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView<'a> {
    /// When the machines were probed (the probe ended).
    pub probed_at_ms: Option<u64>,
    /// How long that probe took, milliseconds (it began `probeMs` before `probedAtMs`).
    pub probe_ms: Option<u64>,
    /// Seconds between probes.
    pub interval_seconds: u64,
    /// Every machine.
    pub machines: &'a [MachineStatus],
}

/// One message of the live stream.
#[derive(Debug, Clone)]
pub enum Message {
    /// A run's event, as `--json` prints it.
    Event(String),
    /// The status after a probe, as `/api/status` answers it.
    Status(String),
}

/// Everything the handlers share.
pub struct Shared {
    /// The fleet.
    pub fleet: Fleet,
    /// The options it runs with.
    pub options: ServeOptions,
    snapshot: RwLock<Snapshot>,
    /// The events of the run in progress so far; held while sending, so a
    /// client that subscribes under it misses and repeats nothing.
    live: Mutex<Vec<Event>>,
    tx: broadcast::Sender<Message>,
    /// Turns true when the server stops: the event streams end then, so
    /// the graceful shutdown does not wait for clients that never leave.
    stopping: watch::Receiver<bool>,
    /// The journals' facts as last read.
    history: Mutex<HistoryCache>,
}

impl Shared {
    /// Nothing probed yet; `stopping` turns true when the server stops.
    pub fn new(fleet: Fleet, options: &ServeOptions, stopping: watch::Receiver<bool>) -> Shared {
        let (tx, _) = broadcast::channel(1024);
        let (snapshot, live) = (RwLock::default(), Mutex::default());
        let history = Mutex::default();
        Shared { fleet, options: options.clone(), snapshot, live, tx, stopping, history }
    }

    /// What the journals tell now (reading only the journals that changed):
    /// blocking, call it off the async threads.
    pub fn history(&self) -> History {
        let mut cache = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        History::read_cached(&self.options.state, &mut cache)
    }

    /// Completes when the server stops.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.clone();
        let _ = stopping.wait_for(|stop| *stop).await;
    }

    /// The last probe's result.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `/api/status`'s JSON.
    pub fn status_json(&self) -> serde_json::Value {
        let snapshot = self.snapshot();
        let view = StatusView {
            probed_at_ms: snapshot.probed_at_ms,
            probe_ms: snapshot.probe_ms,
            interval_seconds: self.options.interval.as_secs(),
            machines: &snapshot.statuses,
        };
        serde_json::to_value(view).unwrap_or_default()
    }

    /// The events of the run in progress so far, and a receiver of what
    /// comes after them.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Message>) {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        (live.clone(), self.tx.subscribe())
    }
}

/// The running loops.
pub struct Tasks {
    probe: tokio::task::JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Tasks {
    /// Stops both loops.
    pub fn stop(self) {
        self.probe.abort();
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts the probe loop and the journal follower.
pub fn start(shared: Arc<Shared>) -> Tasks {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe_loop(shared.clone()));
    let follower = Follower::new(shared.options.state.clone());
    *shared.live.lock().unwrap_or_else(PoisonError::into_inner) = follower.in_progress();
    let flag = stop.clone();
    std::thread::spawn(move || follow(shared, follower, flag));
    Tasks { probe, stop }
}

async fn probe_loop(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(shared.options.interval.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let began = now_ms();
        let fleet = &shared.fleet;
        let reader = shared.clone();
        let history = tokio::task::spawn_blocking(move || reader.history()).await.unwrap_or_default();
        let parallel = shared.options.parallel;
        let within = answer_within(shared.options.interval);
        let statuses =
            status::probe(&fleet.machines, &fleet.expected, fleet.evaluated_at_ms, &history, parallel, within).await;
        *shared.snapshot.write().unwrap_or_else(PoisonError::into_inner) =
            Snapshot { probed_at_ms: Some(now_ms()), probe_ms: Some(now_ms().saturating_sub(began)), statuses };
        let _ = shared.tx.send(Message::Status(shared.status_json().to_string()));
    }
}

/// How long a probe waits for a machine's first answer: one interval, so
/// a machine cut off shows as unreachable by the end of the probe that
/// began after it went (one interval), but never less than an ssh
/// handshake takes on a busy machine, nor more than `lab status` waits.
pub fn answer_within(interval: Duration) -> Duration {
    interval.clamp(MIN_ANSWER_WITHIN, status::ANSWER_WITHIN)
}

/// The least time a machine is given to answer.
pub const MIN_ANSWER_WITHIN: Duration = Duration::from_secs(3);

fn follow(shared: Arc<Shared>, mut follower: Follower, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let new = follower.poll();
        if !new.is_empty() {
            let mut live = shared.live.lock().unwrap_or_else(PoisonError::into_inner);
            *live = follower.in_progress();
            for event in new {
                let _ = shared.tx.send(Message::Event(serde_json::to_string(&event).unwrap_or_default()));
            }
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}
