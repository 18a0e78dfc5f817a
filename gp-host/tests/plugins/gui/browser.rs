//! Driving Debian's Chromium, headless, through chromedriver (WebDriver) on loopback: a
//! driver and a browser of their own per test, closed whatever the test does, and the
//! bounded waits and clicks the GUI tests are written in.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install chromium
//! chromium-driver`); [`browser_installed`] says what to do without them.

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::harness::workspace;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing may take to show up in the page.
const WAIT: Duration = Duration::from_secs(10);

/// Whether the browser is installed: without it the test fails, unless `GP_BROWSER_TESTS=skip`
/// (then it is skipped, and said so on stderr).
pub fn browser_installed() -> bool {
    let missing: Vec<String> = [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| format!("{path} (Debian package `{package}`)"))
        .collect();
    crate::harness::tool_present(
        "GP_BROWSER_TESTS",
        (!missing.is_empty()).then(|| missing.join(" and ")),
        "apt-get install chromium chromium-driver",
    )
}

/// chromedriver on a loopback port of its own, in a process group of its own (with the
/// browsers it starts); killed, group and all, when dropped.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let dir = tempfile::Builder::new()
            .prefix("gp-chromedriver-")
            .tempdir()
            .unwrap();
        let log = dir.path().join("chromedriver.log");
        // A free port: bound, noted and released (chromedriver cannot take a listener).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + WAIT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before answering: {}",
                    driver.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {port} within {WAIT:?}: {}",
                driver.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any browser it left behind.
        #[cfg(target_os = "linux")]
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group this test created; no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new browser session through `driver`, in a fresh profile.
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut builder = ClientBuilder::new(connector);
    builder.capabilities(capabilities);
    let connecting = builder.connect(&driver.url);
    match tokio::time::timeout(Duration::from_secs(60), connecting).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!("starting Chromium: {e}\n{}", driver.log_text()),
        Err(_) => panic!("Chromium did not start within 60 s\n{}", driver.log_text()),
    }
}

/// Polls `probe` until it gives a value, for at most [`WAIT`]; panics naming `what` and
/// the last thing `probe` saw.
pub async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = match probe().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}; last saw: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn css(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// The element `selector` finds now, or why not, for a probe of [`until`].
async fn element(client: &Client, selector: &str) -> Result<Element, String> {
    client
        .find(Locator::Css(selector))
        .await
        .map_err(|e| format!("no element ({e})"))
}

/// The text of the element with `data-testid` `testid` once it is shown and contains
/// `needle`.
pub async fn wait_text(client: &Client, testid: &str, needle: &str) -> String {
    let selector = css(testid);
    until(&format!("{selector} to show {needle:?}"), || async {
        let element = element(client, &selector).await?;
        if !element.is_displayed().await.map_err(|e| e.to_string())? {
            return Err("the element is hidden".into());
        }
        let text = element.text().await.map_err(|e| e.to_string())?;
        if text.contains(needle) {
            Ok(text)
        } else {
            Err(format!("{text:?}"))
        }
    })
    .await
}

/// Clicks the element with `data-testid` `testid` once it is shown and clickable.
pub async fn click(client: &Client, testid: &str) {
    let selector = css(testid);
    until(&format!("{selector} to be clicked"), || async {
        let element = element(client, &selector).await?;
        element.click().await.map_err(|e| e.to_string())
    })
    .await
}

/// Types `text` into the (emptied) field with `data-testid` `testid`.
pub async fn type_into(client: &Client, testid: &str, text: &str) {
    let selector = css(testid);
    until(&format!("{selector} to take {text:?}"), || async {
        let element = element(client, &selector).await?;
        element.clear().await.map_err(|e| e.to_string())?;
        element.send_keys(text).await.map_err(|e| e.to_string())?;
        match element.prop("value").await.map_err(|e| e.to_string())? {
            Some(value) if value == text => Ok(()),
            other => Err(format!("the field holds {other:?}")),
        }
    })
    .await
}

/// The page down to its last line (the body's box), saved as `target/NAME`.
pub async fn save_page(client: &Client, name: &str) -> PathBuf {
    let png = client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .screenshot()
        .await
        .unwrap();
    save_screenshot(&png, name)
}

pub fn save_screenshot(png: &[u8], name: &str) -> PathBuf {
    let dir = workspace().join("target");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// Runs `scenario` in a fresh headless Chromium (its own chromedriver and profile) as a task
/// of its own, so that, whatever it does, the browser is closed before the test reports;
/// a panic in it is the test's.
pub fn in_browser<F, Fut>(scenario: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start();
    let profile = tempfile::Builder::new()
        .prefix("gp-chromium-")
        .tempdir()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;
        let outcome = tokio::spawn(scenario(client.clone())).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        outcome
    });
    drop(driver);
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("the browser scenario did not finish: {error}"),
        }
    }
}
