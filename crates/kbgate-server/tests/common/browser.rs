//! The browser tests' WebDriver start and their accessibility checker, shared by
//! `browser.rs` and `widget_browser.rs`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// Kills chromedriver (and with it the browser) however the test ends.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn start_browser(chromium: &Path, driver: &Path, downloads: &Path) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let guard = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if reqwest::get(format!("{url}/status")).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caps = json!({
        "browserName": "chrome",
        // A script that called alert() leaves its prompt open for us to find.
        "unhandledPromptBehavior": "ignore",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::rustls()
        .expect("tls roots")
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("WebDriver session");
    (guard, client)
}

/// The pinned axe-core (npm), installed once under the target directory.
pub const AXE_VERSION: &str = "4.14.1";

/// One install at a time among the tests of a binary (they run as threads).
static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// axe-core's browser bundle: from the cached install, or installed with npm now. A missing
/// npm or registry fails the test (the accessibility check is part of it, never skipped
/// when the browser runs). The install goes to a scratch directory renamed into place once
/// complete, so a test never reads a half-written one (on a fresh target directory, browser
/// tests running side by side each started an install into the same directory, and one read
/// it while another's npm was rewriting it).
pub fn axe_source() -> String {
    let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join(format!("axe-core-{AXE_VERSION}"));
    let js = dir.join("node_modules/axe-core/axe.min.js");
    if !js.exists() {
        std::fs::create_dir_all(tmp).unwrap();
        let scratch = tempfile::Builder::new()
            .prefix("axe-core-install-")
            .tempdir_in(tmp)
            .unwrap();
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(scratch.path())
            .arg(format!("axe-core@{AXE_VERSION}"))
            .status()
            .expect("npm (to install axe-core for the accessibility check)");
        assert!(
            status.success(),
            "npm install axe-core@{AXE_VERSION} failed"
        );
        // Another process may have put a complete copy there meanwhile: keep that one. An
        // incomplete one (an install cut short) is replaced.
        if !js.exists() {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap();
            }
            std::fs::rename(scratch.keep(), &dir).unwrap();
        }
    }
    std::fs::read_to_string(&js).unwrap_or_else(|e| panic!("{}: {e}", js.display()))
}
