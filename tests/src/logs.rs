//! What a test's own process logs, captured: the product's `tracing` lines into a buffer the test
//! reads back (to prove a secret never reached a log line, or how many lines a flood produced).

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// A `tracing` writer into a shared buffer; clones share it.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Every line the whole process logs, at every level the product allows
    /// (`logging::capped("trace")`: its dependencies' noisiest levels capped as in production),
    /// as the process's global subscriber. Call once per test binary.
    pub fn everything() -> Self {
        let log = Captured::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_writer(log.clone())
                    .with_ansi(false)
                    .with_filter(EnvFilter::new(wifi_isolate::logging::capped("trace"))),
            ),
        )
        .expect("a global tracing subscriber was already set");
        log
    }
}
