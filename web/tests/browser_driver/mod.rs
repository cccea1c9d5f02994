//! A real browser for the UI tests: Debian's `chromium`, headless, driven over WebDriver by
//! `chromedriver`, which the test starts on a free port and stops by its PID (with the browser
//! processes it started). A missing browser fails with the install command.

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use podperf_testkit::{eventually, free_port, ChildGuard};
use serde_json::{json, Value};

/// How long a page may take to show what a test waits for.
pub const WITHIN: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    driver: ChildGuard,
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts chromedriver and a headless chromium session (`--no-sandbox`: the tests run as
    /// root in CI containers).
    pub async fn start() -> Browser {
        let hint = "install them: apt-get install -y chromium chromium-driver \
                    (scripts/install-deps.sh does)";
        let driver_bin = on_path("chromedriver").unwrap_or_else(|| {
            panic!("chromedriver is not on PATH: the UI tests need a real browser; {hint}")
        });
        let chromium = on_path("chromium").unwrap_or_else(|| {
            panic!("chromium is not on PATH: the UI tests need a real browser; {hint}")
        });
        let port = free_port();
        let mut cmd = Command::new(driver_bin);
        cmd.arg(format!("--port={port}"));
        let driver = ChildGuard::spawn(cmd, "chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let http = reqwest::Client::new();
        eventually(WITHIN, "chromedriver answers", || async {
            let v: Value = http.get(&status).send().await.ok()?.json().await.ok()?;
            (v["value"]["ready"] == true).then_some(())
        })
        .await;
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"],
            }
        });
        let caps = caps.as_object().cloned().expect("an object");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no browser session ({e}); chromedriver log:\n{}",
                    driver.log()
                )
            });
        Browser { client, driver }
    }

    /// Runs `script` (a function body; `return` its value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed ({e}): {script}"))
    }

    /// Polls `script` until it returns something truthy (a non-empty string, `true`, a
    /// non-zero number, an object) and returns that; panics naming `what` after [`WITHIN`].
    pub async fn wait_js(&self, what: &str, script: &str) -> Value {
        self.wait_js_within(WITHIN, what, script).await
    }

    /// [`Self::wait_js`] with its own bound (e.g. a whole matrix run).
    pub async fn wait_js_within(&self, within: Duration, what: &str, script: &str) -> Value {
        eventually(within, what, || async {
            let v = self.client.execute(script, vec![]).await.ok()?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            truthy.then_some(v)
        })
        .await
    }

    /// The element matching `css`, once it is there.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        eventually(WITHIN, &format!("{css} is on the page"), || async {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    /// Saves a PNG of the window to `target/screenshots/NAME.png` and, with
    /// `PODPERF_SCREENSHOTS=docs`, to `docs/screenshots/NAME.png` for the README.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut dirs = vec![root.join("target/screenshots")];
        if std::env::var("PODPERF_SCREENSHOTS").as_deref() == Ok("docs") {
            dirs.push(root.join("docs/screenshots"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).expect("screenshot dir");
            std::fs::write(dir.join(format!("{name}.png")), &png).expect("write screenshot");
        }
    }

    /// Ends the session and stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        drop(self);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser processes chromedriver started, then chromedriver itself, by PID.
        for p in podperf_testkit::descendants(self.driver.pid()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.driver.sigkill();
        let _ = self.driver.wait_timeout(Duration::from_secs(5));
    }
}
