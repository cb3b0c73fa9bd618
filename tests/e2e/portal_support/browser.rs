//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol: the one driver of every browser scenario.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{Ws, artifacts_dir, client, ws_connect};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Debian's Chromium is installed: every browser scenario's first
/// check (a failure under `CI`, a loud skip otherwise).
pub fn chromium_available() -> bool {
    super::service_available(
        "chromium at /usr/bin/chromium",
        Path::new(CHROMIUM).exists(),
    )
}

pub struct Browser {
    child: Child,
    ws: Ws,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    pub async fn launch(profile: &Path) -> Browser {
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=420,1200",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes its debugging port into the profile once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let port = std::fs::read_to_string(&port_file).ok().and_then(|text| {
                text.lines()
                    .next()
                    .and_then(|l| l.trim().parse::<u16>().ok())
            });
            if let Some(port) = port {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its debugging port"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let targets: Value = client()
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
            .expect("DevTools target list")
            .json()
            .await
            .expect("JSON");
        let page = targets
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().expect("debugger URL");
        let ws = ws_connect(url).await;
        Browser {
            child,
            ws,
            next_id: 1,
        }
    }

    /// Sends a DevTools command and waits for its answer (events in between are
    /// ignored).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(request.to_string().into()))
            .await
            .expect("send to chromium");
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("chromium answers")
                .expect("open")
                .expect("message");
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("JSON");
                if value["id"] == id {
                    assert!(value["error"].is_null(), "{method}: {}", value["error"]);
                    return value["result"].clone();
                }
            }
        }
    }

    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Saves a PNG of the page as `test-artifacts/NAME` for review.
    pub async fn screenshot(&mut self, name: &str) {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = data_encoding::BASE64
            .decode(shot["data"].as_str().expect("png data").as_bytes())
            .expect("DevTools sends valid base64");
        std::fs::write(artifacts_dir().join(name), png).expect("screenshot");
    }

    /// Polls `expression` until it is truthy; returns its value.
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        self.wait_for_long(what, expression, Duration::from_secs(20))
            .await
    }

    /// [`Self::wait_for`] with its own time limit.
    pub async fn wait_for_long(&mut self, what: &str, expression: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(Instant::now() < deadline, "the page never showed {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
