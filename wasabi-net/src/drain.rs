//! [`DrainSignal`]: how a supervisor asks an instance to drain.

/// Asks a running instance to drain: stop accepting connections, let the
/// open ones finish, then end. Clones share one signal; an instance given
/// none never drains. Both guest worlds (Go js/wasm, WASI) watch it.
///
/// ```
/// use wasabi_net::DrainSignal;
///
/// let drain = DrainSignal::new();
/// let seen_by_the_instance = drain.clone();
/// // ... later, from the supervisor:
/// drain.start();
/// assert!(seen_by_the_instance.draining());
/// ```
#[derive(Debug, Clone)]
pub struct DrainSignal {
    tx: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    rx: tokio::sync::watch::Receiver<bool>,
}

impl Default for DrainSignal {
    fn default() -> Self {
        DrainSignal::new()
    }
}

impl DrainSignal {
    /// A signal not yet given.
    pub fn new() -> DrainSignal {
        let (tx, rx) = tokio::sync::watch::channel(false);
        DrainSignal {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Gives the signal (idempotent).
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    /// `true` once the signal was given.
    pub fn draining(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once the signal is given.
    pub async fn requested(&mut self) {
        let _ = self.rx.wait_for(|d| *d).await;
    }
}
