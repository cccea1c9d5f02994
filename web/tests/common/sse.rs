//! A Server-Sent Events reader over a reqwest response: one event at a time, with a bound.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

/// One event: its name (`message` when none is given; `comment` for a comment line) and data.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub name: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

impl SseReader {
    pub fn new(res: reqwest::Response) -> Self {
        assert_eq!(res.status(), 200);
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        SseReader {
            body: res.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next event (comments included), or `None` once the server ended the stream; panics
    /// after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let read = async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    return Some(parse(&block));
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                    Some(Err(_)) | None => return None,
                }
            }
        };
        tokio::time::timeout(within, read)
            .await
            .unwrap_or_else(|_| panic!("no event within {within:?}"))
    }

    /// Skips events until one named `name` for which `pred` holds; panics after `within`.
    pub async fn wait_for(
        &mut self,
        name: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("the stream ended before a {name} event"));
            eprintln!("sse: {} {}", ev.name, ev.data);
            if ev.name == name && pred(&ev.json()) {
                return ev.json();
            }
        }
    }
}

fn parse(block: &str) -> SseEvent {
    let mut name = "message".to_string();
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
        } else if let Some(v) = line.strip_prefix(':') {
            name = "comment".into();
            data.push(v.trim().to_string());
        }
    }
    SseEvent {
        name,
        data: data.join("\n"),
    }
}
