//! The host's log, captured as text, for tests that assert what it says.

/// A writer whose clones share what was written, for the test to read back as text.
#[derive(Clone, Default)]
pub struct Written(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Written {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with the host's log captured as text.
pub fn with_captured_log<R>(f: impl FnOnce() -> R) -> (R, String) {
    keep_two_dispatchers();
    let buffer = Written::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    (result, buffer.text())
}

/// Keeps a second dispatcher registered for the whole run, so that tracing never takes the
/// shortcut it takes with exactly one: with one dispatcher registered, tracing-core (0.1.36)
/// asks only the registering thread's current dispatcher whether a new callsite is of
/// interest, so a callsite first reached on a thread without this test's subscriber (another
/// test's) is cached as of no interest, and this test's capture loses its events until the
/// next dispatcher registers. With two or more, every live dispatcher is asked.
fn keep_two_dispatchers() {
    static KEEPER: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    KEEPER.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}
