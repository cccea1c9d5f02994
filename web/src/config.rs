//! podperf-web's validated configuration, and the rule that ties the listen address to the token.

use std::net::SocketAddr;
use std::time::Duration;

/// What the server needs besides its listener and its dispatcher client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// Bearer tokens any of which opens the API and the pages; empty = no token asked (the
    /// server then listens on loopback only, see [`check_listen`]).
    pub tokens: Vec<String>,
    /// Event streams (`GET /api/v2/events`) open at once; one more is refused with 429.
    pub max_event_streams: usize,
    /// Longest `?wait=` a submit may ask for.
    pub max_wait: Duration,
    /// How often the live-event hub reads the workers and the runs (joins, leaves, progress)
    /// while some stream is open.
    pub poll_interval: Duration,
    /// How long `/readyz` waits for the dispatcher's answer.
    pub ready_timeout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            tokens: Vec::new(),
            max_event_streams: 256,
            max_wait: Duration::from_secs(u64::from(podperf_protocol::job::bounds::TIMEOUT_S_MAX)),
            poll_interval: Duration::from_secs(1),
            ready_timeout: Duration::from_secs(2),
        }
    }
}

/// The tokens of `PODPERF_WEB_TOKEN`: comma-separated, blanks trimmed, empty ones dropped.
pub fn parse_tokens(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// Why a listen address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without a token: set PODPERF_WEB_TOKEN (or --token), \
     or listen on a loopback address such as 127.0.0.1:8080"
)]
pub struct ListenRefused {
    pub addr: SocketAddr,
}

/// Without a token the API and the pages are open to whoever reaches them: allowed on a loopback
/// address only.
pub fn check_listen(addr: SocketAddr, tokens: &[String]) -> Result<(), ListenRefused> {
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(ListenRefused { addr });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_split_and_trimmed() {
        assert_eq!(parse_tokens(None), Vec::<String>::new());
        assert_eq!(parse_tokens(Some(" , ")), Vec::<String>::new());
        assert_eq!(parse_tokens(Some("a, b ,,c")), ["a", "b", "c"]);
    }

    #[test]
    fn no_token_means_loopback_only() {
        let none: Vec<String> = Vec::new();
        let some = vec!["t".to_string()];
        assert!(check_listen("127.0.0.1:8080".parse().unwrap(), &none).is_ok());
        assert!(check_listen("[::1]:8080".parse().unwrap(), &none).is_ok());
        let err = check_listen("0.0.0.0:8080".parse().unwrap(), &none).unwrap_err();
        assert!(err.to_string().contains("PODPERF_WEB_TOKEN"), "{err}");
        assert!(check_listen("10.1.2.3:8080".parse().unwrap(), &none).is_err());
        assert!(check_listen("0.0.0.0:8080".parse().unwrap(), &some).is_ok());
    }
}
