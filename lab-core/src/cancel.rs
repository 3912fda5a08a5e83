//! Asking a run (or an evaluation) to stop (Ctrl-C): steps in flight
//! finish, nothing new starts.

use std::sync::Arc;

use tokio::sync::watch;

/// A shared stop request. Clones share it.
#[derive(Debug, Clone)]
pub struct CancelToken(Arc<watch::Sender<bool>>);

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken(Arc::new(watch::channel(false).0))
    }
}

impl CancelToken {
    /// A token nobody has cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when the run is asked to stop.
    pub async fn cancelled(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in self, so wait_for cannot fail while we wait.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
