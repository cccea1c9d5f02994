//! Finds the external tools on `PATH` and asks each for its version, once at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use podperf_protocol::worker::{Tool, ToolInfo};

/// Looks every tool up; a missing one is reported as unavailable, never an error.
pub async fn detect_all() -> Vec<ToolInfo> {
    let mut out = Vec::new();
    for tool in Tool::ALL {
        out.push(detect(tool).await);
    }
    out
}

async fn detect(tool: Tool) -> ToolInfo {
    let Some(path) = which(tool.program()) else {
        tracing::warn!(
            tool = tool.program(),
            "tool not found on PATH; jobs needing it are refused"
        );
        return ToolInfo {
            tool,
            available: false,
            path: None,
            version: None,
        };
    };
    let version = version_of(tool, &path).await;
    ToolInfo {
        tool,
        available: true,
        path: Some(path.display().to_string()),
        version,
    }
}

/// The first executable named `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

async fn version_of(tool: Tool, path: &Path) -> Option<String> {
    let flag = match tool {
        Tool::Ping | Tool::Tracepath => "-V",
        Tool::Fping => "-v",
        Tool::Traceroute | Tool::Iperf3 | Tool::Sockperf => "--version",
    };
    let run = tokio::process::Command::new(path)
        .arg(flag)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(3), run)
        .await
        .ok()?
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    parse_version(&text)
}

/// The first version-looking token (`20221126`, `2.1.20`, `3.12`) of a `--version` text.
fn parse_version(text: &str) -> Option<String> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    first
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| {
            t.trim_start_matches(['v', 's'])
                .trim_end_matches([')', '.'])
        })
        .find(|t| t.chars().next().is_some_and(|c| c.is_ascii_digit()) && t.len() > 1)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_from_real_banners() {
        assert_eq!(
            parse_version("ping from iputils 20221126\nlibcap: yes").as_deref(),
            Some("20221126")
        );
        assert_eq!(
            parse_version("Modern traceroute for Linux, version 2.1.2\nCopyright").as_deref(),
            Some("2.1.2")
        );
        assert_eq!(
            parse_version("iperf 3.12 (cJSON 1.7.15)\nLinux host 6.1.0 x86_64").as_deref(),
            Some("3.12")
        );
        assert_eq!(parse_version("fping: Version 5.1").as_deref(), Some("5.1"));
        assert_eq!(parse_version(""), None);
    }
}
