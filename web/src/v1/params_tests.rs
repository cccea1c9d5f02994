//! The `task_param` parser: what the old system's users send, and what is refused.

use super::*;
use test_case::test_case;

fn ping_p(count: u32, interval_ms: u32, size_bytes: u32) -> JobParams {
    JobParams::Ping(PingParams {
        count,
        interval_ms,
        size_bytes,
    })
}

#[test_case("", ping_p(5, 200, 56); "defaults")]
#[test_case("-c 5", ping_p(5, 200, 56); "count")]
#[test_case("-c5 -i 0.5", ping_p(5, 500, 56); "glued value and interval")]
#[test_case("  -c 10\t-s 1400 -i 1 ", ping_p(10, 1000, 1400); "blanks")]
fn ping_accepts(param: &str, want: JobParams) {
    assert_eq!(parse(TaskType::Ping, param).unwrap(), want);
}

#[test]
fn iperf_accepts_the_old_flags() {
    let p = parse(TaskType::Iperf, "-i 1 -f M").unwrap();
    assert_eq!(p, JobParams::Iperf3(Iperf3Params::default()));
    let p = parse(TaskType::Iperf, "-t 10 -P 4").unwrap();
    let JobParams::Iperf3(p) = p else { panic!() };
    assert_eq!((p.duration_s, p.parallel), (10, 4));
    let p = parse(TaskType::Iperf, "-u -b 100M -t 3 -R").unwrap();
    let JobParams::Iperf3(p) = p else { panic!() };
    assert_eq!(p.protocol, TransportProtocol::Udp);
    assert_eq!(p.bitrate_bps, Some(100_000_000));
    assert!(p.reverse);
}

#[test]
fn traceroute_accepts_its_flags() {
    let p = parse(TaskType::Traceroute, "-n -m 10 -I").unwrap();
    assert_eq!(
        p,
        JobParams::Traceroute(TracerouteParams {
            max_hops: 10,
            protocol: TracerouteProtocol::Icmp
        })
    );
}

#[test_case(TaskType::Ping, "-f", "-f"; "flood ping is not on the list")]
#[test_case(TaskType::Ping, "-c 5; rm -rf /", "';'"; "semicolon")]
#[test_case(TaskType::Ping, "-c $(reboot)", "'$'"; "command substitution")]
#[test_case(TaskType::Ping, "-c `id`", "'`'"; "backquote")]
#[test_case(TaskType::Ping, "-c 5 | nc x 1", "'|'"; "pipe")]
#[test_case(TaskType::Ping, "-c 5 > /tmp/x", "'>'"; "redirection")]
#[test_case(TaskType::Ping, "-c 0", "-c 0 is out of bounds"; "count zero")]
#[test_case(TaskType::Ping, "-c 1001", "-c 1001 is out of bounds"; "count too high")]
#[test_case(TaskType::Ping, "-c x", "-c \"x\""; "count not a number")]
#[test_case(TaskType::Ping, "-c", "-c needs a value"; "count without value")]
#[test_case(TaskType::Ping, "-i 0.01", "-i 0.01 is out of bounds"; "interval below what ping allows")]
#[test_case(TaskType::Ping, "-c 5 -c 6", "-c is given twice"; "twice")]
#[test_case(TaskType::Ping, "10.0.0.1", "\"10.0.0.1\" is not a flag"; "a target")]
#[test_case(TaskType::Ping, "--count 5", "\"--count\""; "long flag")]
#[test_case(TaskType::Iperf, "-c 10.0.0.1", "flag -c is not allowed for iperf"; "iperf client address")]
#[test_case(TaskType::Iperf, "-p 5201", "flag -p"; "port")]
#[test_case(TaskType::Iperf, "-t 61", "-t 61 is out of bounds"; "duration")]
#[test_case(TaskType::Iperf, "-P 17", "-P 17 is out of bounds"; "streams")]
#[test_case(TaskType::Iperf, "-b 1G", "-b applies to UDP"; "bitrate on tcp")]
#[test_case(TaskType::Iperf, "-u -b 1T", "-b \"1T\""; "bitrate unit")]
#[test_case(TaskType::Iperf, "-f X", "-f \"X\""; "format")]
#[test_case(TaskType::Iperf, "-u5", "-u takes no value"; "switch with value")]
#[test_case(TaskType::Traceroute, "-m 65", "-m 65 is out of bounds"; "hops")]
#[test_case(TaskType::Traceroute, "-I -T", "exclude each other"; "two protocols")]
#[test_case(TaskType::Traceroute, "-w 1", "flag -w"; "wait not on the list")]
fn refuses_naming_the_flag(kind: TaskType, param: &str, names: &str) {
    let err = parse(kind, param).unwrap_err();
    assert!(err.contains(names), "{param:?}: {err}");
    assert!(err.starts_with("task_param"), "{err}");
}

#[test]
fn task_types_are_the_old_ones() {
    assert_eq!(TaskType::parse("iperf").unwrap(), TaskType::Iperf);
    let err = TaskType::parse("iperf3").unwrap_err();
    assert!(err.contains("task_type"), "{err}");
    assert!(TaskType::parse("shell").is_err());
}

#[test]
fn rendered_params_parse_back() {
    for (kind, param) in [
        (TaskType::Ping, "-c 7 -i 0.3 -s 100"),
        (TaskType::Iperf, "-t 3 -P 2 -u -b 5000000 -R"),
        (TaskType::Traceroute, "-m 12 -T"),
    ] {
        let p = parse(kind, param).unwrap();
        assert_eq!(render(&p), param);
        assert_eq!(parse(kind, &render(&p)).unwrap(), p);
    }
}
