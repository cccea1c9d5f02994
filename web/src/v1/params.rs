//! The published design's `task_param`: the old free-text flag string (`-c 5`, `-i 1 -f M`,
//! `-t 10 -P 4`), parsed into podperf's typed, bounded parameters with an allow-list of flags
//! per kind. Nothing of the string reaches a tool: the worker builds each argv from the typed
//! fields. Anything else — a flag not on the list, a value that does not parse or is out of
//! bounds, a shell metacharacter — is refused with a message naming it.

use podperf_protocol::job::{
    bounds, Iperf3Params, JobParams, PingParams, TracerouteParams, TracerouteProtocol,
    TransportProtocol,
};

/// The v1 `task_type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskType {
    Ping,
    /// iperf3.
    Iperf,
    Traceroute,
}

impl TaskType {
    pub fn parse(s: &str) -> Result<TaskType, String> {
        match s {
            "ping" => Ok(TaskType::Ping),
            "iperf" => Ok(TaskType::Iperf),
            "traceroute" => Ok(TaskType::Traceroute),
            _ => Err(format!(
                "task_type {s:?} is not one of ping, iperf, traceroute"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Ping => "ping",
            TaskType::Iperf => "iperf",
            TaskType::Traceroute => "traceroute",
        }
    }

    /// The flags this kind accepts.
    fn allowed(self) -> &'static str {
        match self {
            TaskType::Ping => "-c, -i, -s",
            TaskType::Iperf => "-t, -P, -u, -b, -R, -i, -f",
            TaskType::Traceroute => "-m, -I, -T, -U, -n",
        }
    }
}

/// Characters a `task_param` may hold: letters, digits, blanks, `-` and `.`. The rest (`;`, `|`,
/// `&`, `$`, backquotes, parentheses, redirections, quotes, globs, …) is refused.
fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ' ' || c == '\t' || c == '-' || c == '.'
}

/// Parses `param` for `kind`; the error names the flag (or the character) refused.
pub fn parse(kind: TaskType, param: &str) -> Result<JobParams, String> {
    if let Some(c) = param.chars().find(|c| !allowed_char(*c)) {
        return Err(format!(
            "task_param: character {c:?} is not allowed (only flags and numbers; shell \
             metacharacters are refused)"
        ));
    }
    let mut flags = Flags::new(kind, param);
    let params = match kind {
        TaskType::Ping => ping(&mut flags)?,
        TaskType::Iperf => iperf(&mut flags)?,
        TaskType::Traceroute => traceroute(&mut flags)?,
    };
    params
        .validate()
        .map_err(|e| format!("task_param: {}", e.message))?;
    Ok(params)
}

/// The flags of a string, read one by one.
struct Flags<'a> {
    kind: TaskType,
    tokens: std::iter::Peekable<std::str::SplitWhitespace<'a>>,
    seen: Vec<String>,
}

impl<'a> Flags<'a> {
    fn new(kind: TaskType, param: &'a str) -> Self {
        Flags {
            kind,
            tokens: param.split_whitespace().peekable(),
            seen: Vec::new(),
        }
    }

    /// The next flag (`-c`), with a value glued to it (`-c5`) if any.
    fn next(&mut self) -> Result<Option<(String, Option<String>)>, String> {
        let Some(tok) = self.tokens.next() else {
            return Ok(None);
        };
        let Some(rest) = tok.strip_prefix('-').filter(|r| !r.starts_with('-')) else {
            return Err(format!(
                "task_param: {tok:?} is not a flag {} takes ({})",
                self.kind.as_str(),
                self.kind.allowed()
            ));
        };
        let mut chars = rest.chars();
        let Some(letter) = chars.next() else {
            return Err("task_param: a lone \"-\" is not a flag".into());
        };
        let flag = format!("-{letter}");
        if self.seen.contains(&flag) {
            return Err(format!("task_param: {flag} is given twice"));
        }
        self.seen.push(flag.clone());
        let glued = chars.as_str();
        Ok(Some((flag, (!glued.is_empty()).then(|| glued.to_string()))))
    }

    fn value(&mut self, flag: &str, glued: Option<String>) -> Result<String, String> {
        if let Some(v) = glued {
            return Ok(v);
        }
        match self.tokens.peek() {
            Some(v) if !v.starts_with('-') => Ok(self.tokens.next().unwrap_or_default().into()),
            _ => Err(format!("task_param: {flag} needs a value")),
        }
    }

    fn no_value(&self, flag: &str, glued: Option<String>) -> Result<(), String> {
        match glued {
            Some(v) => Err(format!("task_param: {flag} takes no value (got {v:?})")),
            None => Ok(()),
        }
    }

    fn unknown(&self, flag: &str) -> String {
        format!(
            "task_param: flag {flag} is not allowed for {} (allowed: {})",
            self.kind.as_str(),
            self.kind.allowed()
        )
    }
}

/// An integer in `min..=max`.
fn int<T>(flag: &str, v: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = v
        .parse()
        .map_err(|_| format!("task_param: {flag} {v:?} is not a whole number"))?;
    if n < min || n > max {
        return Err(format!(
            "task_param: {flag} {v} is out of bounds ({min}..={max})"
        ));
    }
    Ok(n)
}

/// Seconds (`0.2`, `1`) in `min..=max`.
fn seconds(flag: &str, v: &str, min: f64, max: f64) -> Result<f64, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("task_param: {flag} {v:?} is not a number of seconds"))?;
    if !s.is_finite() || s < min || s > max {
        return Err(format!(
            "task_param: {flag} {v} is out of bounds ({min}..={max} s)"
        ));
    }
    Ok(s)
}

fn ping(f: &mut Flags) -> Result<JobParams, String> {
    let mut p = PingParams::default();
    while let Some((flag, glued)) = f.next()? {
        let v = match flag.as_str() {
            "-c" | "-i" | "-s" => f.value(&flag, glued)?,
            _ => return Err(f.unknown(&flag)),
        };
        match flag.as_str() {
            "-c" => p.count = int(&flag, &v, 1, bounds::PING_COUNT_MAX)?,
            "-s" => p.size_bytes = int(&flag, &v, 0, bounds::PING_SIZE_BYTES_MAX)?,
            _ => {
                let min = f64::from(bounds::PING_INTERVAL_MS_MIN) / 1000.0;
                let max = f64::from(bounds::PING_INTERVAL_MS_MAX) / 1000.0;
                p.interval_ms = (seconds(&flag, &v, min, max)? * 1000.0).round() as u32;
            }
        }
    }
    Ok(JobParams::Ping(p))
}

fn iperf(f: &mut Flags) -> Result<JobParams, String> {
    let mut p = Iperf3Params::default();
    while let Some((flag, glued)) = f.next()? {
        match flag.as_str() {
            "-t" => {
                let v = f.value(&flag, glued)?;
                p.duration_s = int(&flag, &v, 1, bounds::IPERF3_DURATION_S_MAX)?;
            }
            "-P" => {
                let v = f.value(&flag, glued)?;
                p.parallel = int(&flag, &v, 1, bounds::IPERF3_PARALLEL_MAX)?;
            }
            "-b" => {
                let v = f.value(&flag, glued)?;
                p.bitrate_bps = Some(bitrate(&v)?);
            }
            "-u" => {
                f.no_value(&flag, glued)?;
                p.protocol = TransportProtocol::Udp;
            }
            "-R" => {
                f.no_value(&flag, glued)?;
                p.reverse = true;
            }
            // Reporting options: checked, and without effect on the measurement (the worker
            // runs `iperf3 --json`, which reports every second).
            "-i" => {
                let v = f.value(&flag, glued)?;
                seconds(&flag, &v, 0.1, 60.0)?;
            }
            "-f" => {
                let v = f.value(&flag, glued)?;
                if !matches!(v.as_str(), "k" | "m" | "g" | "t" | "K" | "M" | "G" | "T") {
                    return Err(format!(
                        "task_param: -f {v:?} is not one of k m g t K M G T"
                    ));
                }
            }
            _ => return Err(f.unknown(&flag)),
        }
    }
    if p.bitrate_bps.is_some() && p.protocol == TransportProtocol::Tcp {
        return Err("task_param: -b applies to UDP tests (-u) only".into());
    }
    Ok(JobParams::Iperf3(p))
}

/// `-b` as iperf3 reads it: bits per second with an optional `K`/`M`/`G` (×1000) suffix.
fn bitrate(v: &str) -> Result<u64, String> {
    let (num, mult) = match v.chars().last() {
        Some('k' | 'K') => (&v[..v.len() - 1], 1e3),
        Some('m' | 'M') => (&v[..v.len() - 1], 1e6),
        Some('g' | 'G') => (&v[..v.len() - 1], 1e9),
        _ => (v, 1.0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("task_param: -b {v:?} is not a bitrate (e.g. 100M)"))?;
    let bps = n * mult;
    let max = bounds::IPERF3_BITRATE_BPS_MAX as f64;
    if !bps.is_finite() || bps < 1.0 || bps > max {
        return Err(format!("task_param: -b {v} is out of bounds (1..=100G)"));
    }
    Ok(bps.round() as u64)
}

fn traceroute(f: &mut Flags) -> Result<JobParams, String> {
    let mut p = TracerouteParams::default();
    let mut proto: Option<&str> = None;
    while let Some((flag, glued)) = f.next()? {
        match flag.as_str() {
            "-m" => {
                let v = f.value(&flag, glued)?;
                p.max_hops = int(&flag, &v, 1, bounds::TRACEROUTE_MAX_HOPS_MAX)?;
            }
            "-I" | "-T" | "-U" => {
                f.no_value(&flag, glued)?;
                if let Some(other) = proto {
                    return Err(format!("task_param: {flag} and {other} exclude each other"));
                }
                p.protocol = match flag.as_str() {
                    "-I" => TracerouteProtocol::Icmp,
                    "-T" => TracerouteProtocol::Tcp,
                    _ => TracerouteProtocol::Udp,
                };
                proto = Some(match flag.as_str() {
                    "-I" => "-I",
                    "-T" => "-T",
                    _ => "-U",
                });
            }
            // Numeric output: what the worker always asks for.
            "-n" => f.no_value(&flag, glued)?,
            _ => return Err(f.unknown(&flag)),
        }
    }
    Ok(JobParams::Traceroute(p))
}

/// The flag string of typed parameters (what `GET /api/v1/external/task` shows as `TaskParam`):
/// every setting, in the v1 flags.
pub fn render(params: &JobParams) -> String {
    match params {
        JobParams::Ping(p) => format!(
            "-c {} -i {} -s {}",
            p.count,
            f64::from(p.interval_ms) / 1000.0,
            p.size_bytes
        ),
        JobParams::Iperf3(p) => {
            let mut s = format!("-t {} -P {}", p.duration_s, p.parallel);
            if p.protocol == TransportProtocol::Udp {
                s += " -u";
            }
            if let Some(b) = p.bitrate_bps {
                s += &format!(" -b {b}");
            }
            if p.reverse {
                s += " -R";
            }
            s
        }
        JobParams::Traceroute(p) => {
            let proto = match p.protocol {
                TracerouteProtocol::Icmp => " -I",
                TracerouteProtocol::Tcp => " -T",
                TracerouteProtocol::Udp => "",
            };
            format!("-m {}{proto}", p.max_hops)
        }
        JobParams::Noop(p) => format!("sleep_ms={}", p.sleep_ms),
        // Not a v1 kind (a job the v2 API or the CLI made); shown in fping's flags.
        JobParams::Sweep(p) => format!("-c {} -p {}", p.count, p.interval_ms),
        // Kinds v1 never had: sockperf's and tracepath's own flags, for display only.
        JobParams::Latency(p) => {
            let udp = if p.protocol == TransportProtocol::Udp {
                ""
            } else {
                " --tcp"
            };
            format!(
                "-t {} -m {}{udp} --full-rtt",
                p.duration_s, p.message_size_bytes
            )
        }
        JobParams::Mtu(p) => format!("-m {}", p.max_hops),
    }
}

/// The v1 `task_type` of a podperf job kind.
pub fn task_type(params: &JobParams) -> &'static str {
    match params {
        JobParams::Ping(_) => "ping",
        JobParams::Iperf3(_) => "iperf",
        JobParams::Traceroute(_) => "traceroute",
        JobParams::Noop(_) => "noop",
        JobParams::Sweep(_) => "sweep",
        JobParams::Latency(_) => "latency",
        JobParams::Mtu(_) => "mtu",
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
