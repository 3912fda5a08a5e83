//! Reboots only inside the fleet's maintenance window (`rebootWindow`).
//!
//! Outside it, a reboot either waits for the window to open or is refused,
//! as the run was told ([`OutsideWindow`]). Time comes from a [`Clock`], so
//! tests inject one; waiting uses tokio's timer (paused in tests).

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::cancel::CancelToken;
use crate::window::Window;

/// Local wall-clock time, as the window is written.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, local time.
    fn now(&self) -> NaiveDateTime;
}

/// The machine's local time.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalClock;

impl Clock for LocalClock {
    fn now(&self) -> NaiveDateTime {
        chrono::Local::now().naive_local()
    }
}

/// What a reboot does outside the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutsideWindow {
    /// Waits until the window opens.
    Wait,
    /// Does not reboot; the machine and what depends on it are skipped.
    #[default]
    Refuse,
}

/// Longest single sleep while waiting: the clock is read again after it
/// (clock changes, suspend).
const RECHECK: Duration = Duration::from_secs(60);

/// A reboot asked for outside the window, under [`OutsideWindow::Refuse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outside the maintenance window \"{window}\" (rebootWindow): it opens at {opens} local time, in {wait}; run then, or pass --outside-window wait to wait for it, or --ignore-window to reboot now")]
pub struct WindowClosed {
    /// The window as written.
    pub window: String,
    /// When it opens next, local time (`YYYY-MM-DD HH:MM`).
    pub opens: String,
    /// How long until then, for people.
    pub wait: String,
}

/// What a reboot run started now does about the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowVerdict {
    /// The window is open: reboots go ahead.
    Open,
    /// Closed, under `--outside-window wait`: reboots wait for it.
    Wait,
    /// Closed, under `--outside-window refuse` (the default): a reboot
    /// run is refused; in an orchestrate run the reboots are skipped.
    Refuse,
}

/// The window as a plan or dry run reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStatus {
    /// The window as written (`lab.rebootWindow`).
    pub window: String,
    /// What a reboot started now does.
    pub verdict: WindowVerdict,
    /// When the window opens next, local time (`YYYY-MM-DD HH:MM`); absent
    /// while it is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens: Option<String>,
    /// How long until then, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    /// The refusal a real run would give (under `Refuse`), or the wait's
    /// reason (under `Wait`).
    #[serde(skip)]
    pub closed: Option<WindowClosed>,
}

impl WindowStatus {
    /// One sentence for people: what the real run would do about the
    /// window, and when it opens.
    pub fn describe(&self) -> String {
        let w = &self.window;
        let opens = || {
            format!(
                "it opens at {} local time, in {}",
                self.opens.as_deref().unwrap_or("?"),
                self.wait.as_deref().unwrap_or("?")
            )
        };
        match self.verdict {
            WindowVerdict::Open => format!("the maintenance window \"{w}\" (rebootWindow) is open now"),
            WindowVerdict::Wait => format!(
                "outside the maintenance window \"{w}\" (rebootWindow) now: the real run would wait for it before each reboot; {}",
                opens()
            ),
            WindowVerdict::Refuse => format!(
                "outside the maintenance window \"{w}\" (rebootWindow) now: the real run would refuse to reboot; {} (pass --outside-window wait to wait for it, or --ignore-window to reboot now)",
                opens()
            ),
        }
    }
}

/// The fleet's reboot window and what to do outside it.
#[derive(Debug, Clone)]
pub struct RebootWindow {
    /// The window.
    pub window: Window,
    /// Wait or refuse outside it.
    pub outside: OutsideWindow,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
}

impl RebootWindow {
    /// The window on the machine's local clock.
    pub fn new(window: Window, outside: OutsideWindow) -> Self {
        RebootWindow { window, outside, clock: Arc::new(LocalClock) }
    }

    /// `Ok` when the window is open now, else when it opens.
    pub fn check(&self) -> Result<(), WindowClosed> {
        let now = self.clock.now();
        if self.window.contains(now) {
            return Ok(());
        }
        let opens = self.window.next_open(now);
        let wait = (opens - now).to_std().unwrap_or_default();
        Err(WindowClosed {
            window: self.window.to_string(),
            opens: opens.format("%Y-%m-%d %H:%M").to_string(),
            wait: crate::exec::human_duration(Duration::from_secs(wait.as_secs().max(1))),
        })
    }

    /// What a reboot started now would do about the window: go ahead, wait
    /// for it, or be refused, saying when it opens. Plans and dry runs show
    /// it so they say what the real run would do.
    pub fn status(&self) -> WindowStatus {
        let (verdict, closed) = match self.check() {
            Ok(()) => (WindowVerdict::Open, None),
            Err(closed) if self.outside == OutsideWindow::Wait => (WindowVerdict::Wait, Some(closed)),
            Err(closed) => (WindowVerdict::Refuse, Some(closed)),
        };
        WindowStatus {
            window: self.window.to_string(),
            verdict,
            opens: closed.as_ref().map(|c| c.opens.clone()),
            wait: closed.as_ref().map(|c| c.wait.clone()),
            closed,
        }
    }

    /// Returns once a reboot may go ahead: at once inside the window; else
    /// after waiting for it (`on_wait` is told once), or `Err` under
    /// [`OutsideWindow::Refuse`]. `Ok(false)` when stopped while waiting.
    pub async fn admit(&self, cancel: &CancelToken, on_wait: impl FnOnce(&WindowClosed)) -> Result<bool, WindowClosed> {
        let mut on_wait = Some(on_wait);
        loop {
            let closed = match self.check() {
                Ok(()) => return Ok(true),
                Err(closed) => closed,
            };
            if self.outside == OutsideWindow::Refuse {
                return Err(closed);
            }
            if let Some(tell) = on_wait.take() {
                tell(&closed);
            }
            let now = self.clock.now();
            let left = (self.window.next_open(now) - now).to_std().unwrap_or_default();
            // At least a moment, so a clock that does not move cannot spin.
            let nap = left.clamp(Duration::from_millis(100), RECHECK);
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                () = cancel.cancelled() => return Ok(false),
            }
        }
    }
}

/// A clock that starts at a given local time and follows tokio's (paused)
/// time: tests of waiting for a window.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct TokioClock {
    base: NaiveDateTime,
    start: tokio::time::Instant,
}

#[cfg(test)]
impl TokioClock {
    /// Starting now at `text` (`YYYY-MM-DD HH:MM`).
    pub(crate) fn at(text: &str) -> Arc<dyn Clock> {
        let base = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("a test time");
        Arc::new(TokioClock { base, start: tokio::time::Instant::now() })
    }
}

#[cfg(test)]
impl Clock for TokioClock {
    fn now(&self) -> NaiveDateTime {
        self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-28 is a Saturday.
    fn window(outside: OutsideWindow, now: &str) -> RebootWindow {
        RebootWindow { window: "Sat 02:00-05:00".parse().unwrap(), outside, clock: TokioClock::at(now) }
    }

    #[tokio::test(start_paused = true)]
    async fn inside_the_window_a_reboot_goes_at_once() {
        let w = window(OutsideWindow::Refuse, "2026-11-28 03:00");
        assert!(w.check().is_ok());
        assert_eq!(w.admit(&CancelToken::new(), |_| panic!("no wait")).await, Ok(true));
    }

    #[tokio::test(start_paused = true)]
    async fn outside_the_window_refuse_says_when_it_opens() {
        let w = window(OutsideWindow::Refuse, "2026-11-27 23:30");
        let err = w.admit(&CancelToken::new(), |_| panic!("no wait")).await.unwrap_err();
        assert_eq!(err.opens, "2026-11-28 02:00");
        let text = err.to_string();
        assert!(
            text.contains("\"Sat 02:00-05:00\"")
                && text.contains("2026-11-28 02:00")
                && text.contains("--ignore-window"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_status_says_what_a_run_started_now_would_do() {
        let open = window(OutsideWindow::Refuse, "2026-11-28 03:00").status();
        assert_eq!((open.verdict, open.opens.as_deref()), (WindowVerdict::Open, None));
        let refused = window(OutsideWindow::Refuse, "2026-11-24 10:00").status();
        assert_eq!(refused.verdict, WindowVerdict::Refuse);
        assert_eq!(refused.opens.as_deref(), Some("2026-11-28 02:00"));
        assert_eq!(refused.closed.as_ref().map(|c| c.opens.as_str()), Some("2026-11-28 02:00"));
        let text = refused.describe();
        assert!(text.contains("would refuse to reboot") && text.contains("2026-11-28 02:00"), "{text}");
        let waits = window(OutsideWindow::Wait, "2026-11-24 10:00").status();
        assert_eq!(waits.verdict, WindowVerdict::Wait);
        assert!(waits.describe().contains("would wait for it"), "{}", waits.describe());
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            serde_json::json!({"window": "Sat 02:00-05:00", "verdict": "refuse", "opens": "2026-11-28 02:00", "wait": refused.wait})
        );
    }

    #[tokio::test(start_paused = true)]
    async fn outside_the_window_wait_waits_until_it_opens() {
        let w = window(OutsideWindow::Wait, "2026-11-27 23:30");
        let started = tokio::time::Instant::now();
        let mut told = None;
        assert_eq!(w.admit(&CancelToken::new(), |c| told = Some(c.clone())).await, Ok(true));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(150 * 60) && waited < Duration::from_secs(152 * 60), "{waited:?}");
        assert_eq!(told.unwrap().opens, "2026-11-28 02:00");
        assert!(w.check().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_ends_the_wait() {
        let w = window(OutsideWindow::Wait, "2026-11-27 23:30");
        let cancel = CancelToken::new();
        let stopper = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(600)).await;
                cancel.cancel();
            })
        };
        assert_eq!(w.admit(&cancel, |_| {}).await, Ok(false));
        stopper.await.unwrap();
    }
}
