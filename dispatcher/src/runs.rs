//! Matrix runs: plan the pairs from the live workers, submit their jobs in round order (the
//! scheduler then runs node-disjoint pairs concurrently), keep the run in Redis, report on it.

use podperf_protocol::api::{ApiError, ErrorCode, JobRecord};
use podperf_protocol::job::*;
use podperf_protocol::now_ms;
use podperf_protocol::run::*;
use podperf_protocol::sweep::{SweepParams, SweepTargets};
use podperf_protocol::worker::{Tool, WorkerInfo};
use podperf_report::report;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

use crate::api::{parse, store_error, Api};
use crate::planner::{self, Planned};
use crate::store::{Claim, NewJob};

type Reply<T> = Result<T, ApiError>;

/// The jobs of one pair: one traceroute and one mtu first ([`once_params`]); per sample a ping, a
/// TCP iperf3 (and a UDP one), a TCP latency test (and a UDP one) ([`sample_params`]).
fn pair_params(req: &MatrixRequest) -> Vec<(u32, JobParams)> {
    let mut out: Vec<(u32, JobParams)> = once_params(req).into_iter().map(|p| (0, p)).collect();
    for sample in 0..req.samples {
        out.extend(sample_params(req, sample));
    }
    out
}

/// The jobs a pair runs once, whatever the samples.
fn once_params(req: &MatrixRequest) -> Vec<JobParams> {
    let mut out = Vec::new();
    if req.traceroute {
        out.push(JobParams::Traceroute(TracerouteParams::default()));
    }
    if req.mtu {
        out.push(JobParams::Mtu(MtuParams::default()));
    }
    out
}

/// The jobs of one sample of a pair (`--samples auto` adds more of these).
pub(crate) fn sample_params(req: &MatrixRequest, sample: u32) -> Vec<(u32, JobParams)> {
    let mut out = Vec::new();
    let ping = PingParams {
        count: req.ping_count,
        ..PingParams::default()
    };
    // A mesh measures RTT and loss with one sweep per source instead ([`mesh_sweeps`]).
    if !req.mesh {
        out.push((sample, JobParams::Ping(ping)));
    }
    let tcp = Iperf3Params {
        duration_s: req.iperf3_duration_s,
        ..Iperf3Params::default()
    };
    out.push((sample, JobParams::Iperf3(tcp.clone())));
    if req.udp {
        let udp = Iperf3Params {
            protocol: TransportProtocol::Udp,
            bitrate_bps: Some(req.udp_bitrate_bps),
            ..tcp
        };
        out.push((sample, JobParams::Iperf3(udp)));
    }
    if req.latency {
        let tcp = LatencyParams {
            duration_s: req.latency_duration_s,
            ..LatencyParams::default()
        };
        out.push((sample, JobParams::Latency(tcp.clone())));
        if req.udp {
            let udp = LatencyParams {
                protocol: TransportProtocol::Udp,
                ..tcp
            };
            out.push((sample, JobParams::Latency(udp)));
        }
    }
    out
}

/// The run's job of `params` (its protocol, for iperf3 and latency).
pub(crate) fn run_job(job_id: Uuid, params: &JobParams, sample: u32) -> RunJob {
    let protocol = match params {
        JobParams::Iperf3(i) => Some(i.protocol),
        JobParams::Latency(l) => Some(l.protocol),
        _ => None,
    };
    RunJob {
        job_id,
        kind: params.kind(),
        protocol,
        sample,
    }
}

pub(crate) fn validate(req: &MatrixRequest) -> Reply<()> {
    if req.samples == 0 || req.samples > SAMPLES_MAX {
        let msg = format!("{} is out of bounds (1..={SAMPLES_MAX})", req.samples);
        return Err(ApiError::new(ErrorCode::InvalidParam, msg).with_field("samples"));
    }
    if req.samples_auto && !(req.samples..=SAMPLES_AUTO_MAX).contains(&req.samples_auto_max) {
        let msg = format!(
            "{} is out of bounds ({}..={SAMPLES_AUTO_MAX}: from samples)",
            req.samples_auto_max, req.samples
        );
        return Err(ApiError::new(ErrorCode::InvalidParam, msg).with_field("samples_auto_max"));
    }
    if let Some(t) = req.tolerance_percent {
        if !(0.0..=TOLERANCE_PERCENT_MAX).contains(&t) {
            let msg = format!("{t} is out of bounds (0..={TOLERANCE_PERCENT_MAX} percent)");
            return Err(ApiError::new(ErrorCode::InvalidParam, msg).with_field("tolerance_percent"));
        }
    }
    if let Some(x) = req.max_rtt_ratio {
        if !(x > 0.0 && x <= MAX_RTT_RATIO_MAX) {
            let msg = format!("{x} is out of bounds (above 0, at most {MAX_RTT_RATIO_MAX})");
            return Err(ApiError::new(ErrorCode::InvalidParam, msg).with_field("max_rtt_ratio"));
        }
    }
    for (_, p) in pair_params(req) {
        p.validate()?;
    }
    if req.mesh {
        let checked = SweepParams {
            targets: SweepTargets::All,
            ..sweep_params(req, vec![])
        };
        checked.validate().map_err(|e| {
            ApiError::new(ErrorCode::InvalidParam, e.message).with_field("ping_count")
        })?;
    }
    Ok(())
}

/// A mesh's RTT/loss sweep toward `targets`: `ping_count` requests each, 200 ms apart (as ping).
fn sweep_params(req: &MatrixRequest, targets: Vec<String>) -> SweepParams {
    SweepParams {
        targets: SweepTargets::Workers(targets),
        count: req.ping_count,
        interval_ms: PingParams::default().interval_ms,
        resolved: vec![],
    }
}

/// Whether a worker can take part (it needs every tool the run uses).
fn capable(w: &WorkerInfo, req: &MatrixRequest) -> bool {
    w.has_tool(if req.mesh { Tool::Fping } else { Tool::Ping })
        && w.has_tool(Tool::Iperf3)
        && (!req.traceroute || w.has_tool(Tool::Traceroute))
        && (!req.latency || w.has_tool(Tool::Sockperf))
        && (!req.mtu || w.has_tool(Tool::Tracepath))
}

/// fping's sending time at 1 ms per request over every target, in whole seconds (rounded up).
fn params_count_seconds(p: &SweepParams) -> u64 {
    let targets = match &p.targets {
        SweepTargets::Workers(w) => w.len() as u64,
        SweepTargets::All => 0,
    };
    let requests = u64::from(p.count) * targets;
    requests.div_ceil(1000)
}

/// `a, b, c`.
fn list(ips: impl Iterator<Item = std::net::IpAddr>) -> String {
    ips.map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ")
}

/// Seconds one pair takes when all goes well.
fn pair_seconds(req: &MatrixRequest) -> u64 {
    seconds(pair_params(req).iter().map(|(_, p)| p))
}

/// Seconds `params` take one after the other when all goes well.
pub(crate) fn seconds<'a>(params: impl Iterator<Item = &'a JobParams>) -> u64 {
    params.map(|p| p.nominal_duration().as_secs() + 1).sum()
}

impl Api {
    pub(crate) async fn start_run(&self, payload: &[u8]) -> Reply<RunStarted> {
        let mut req: MatrixRequest = parse(payload)?;
        // The id is not part of the request a retry must repeat, nor of the run's record.
        let submit_id = req.submit_id.take();
        if let Some(id) = submit_id {
            if let Some(prior) = self.store.claim(id).await.map_err(store_error)? {
                return crate::api::replay(prior, &req);
            }
        }
        self.start_claimed(req, Uuid::now_v7(), None, submit_id)
            .await
    }

    /// Plans and submits a matrix run: `runs.start`'s path, also taken by schedules (which give
    /// the run's id beforehand and their name).
    pub(crate) async fn start_matrix(
        &self,
        req: MatrixRequest,
        run_id: Uuid,
        schedule: Option<String>,
    ) -> Reply<RunStarted> {
        // Each run of a schedule is a new one, whatever id its stored request has.
        let req = MatrixRequest {
            submit_id: None,
            ..req
        };
        self.start_claimed(req, run_id, schedule, None).await
    }

    /// [`Api::start_matrix`], idempotent with a submit id (`runs.start`'s retries).
    async fn start_claimed(
        &self,
        req: MatrixRequest,
        run_id: Uuid,
        schedule: Option<String>,
        submit_id: Option<Uuid>,
    ) -> Reply<RunStarted> {
        validate(&req)?;
        let live = self.members.snapshot();
        let workers: Vec<&WorkerInfo> = live
            .iter()
            .map(|v| &v.info)
            .filter(|w| capable(w, &req))
            .collect();
        let plan = planner::plan(&workers, req.mesh);
        if plan.is_empty() {
            let msg = "nothing to measure: the matrix needs two pod workers (on one node or on \
                       two) or host-network workers on two nodes";
            return Err(ApiError::new(ErrorCode::InvalidParam, msg));
        }
        let now = now_ms();
        let (jobs, pairs) = self.plan_jobs(&req, &plan, now)?;
        let rounds = plan.iter().map(|p| p.round + 1).max().unwrap_or(0)
            * req.family.families().len() as u32;
        let run = RunRecord {
            run_id,
            created_at_ms: now,
            sampling: req.samples_auto.then_some(Sampling::Adding),
            request: req,
            rounds,
            pairs,
            schedule,
        };
        let started = RunStarted {
            run_id,
            rounds,
            pairs: run.pairs.len() as u32,
            job_ids: jobs.iter().map(|j| j.job_id).collect(),
        };
        let claim = submit_id.map(|id| Claim::new(id, &run.request, &started));
        if let Some(prior) = self
            .accept_claimed(jobs, Some(&run), claim.as_ref())
            .await?
        {
            return crate::api::replay(prior, &run.request);
        }
        tracing::info!(%run_id, rounds, pairs = run.pairs.len(), "matrix run started");
        if run.sampling.is_some() {
            crate::adaptive::spawn(self.detached(), run_id);
        }
        Ok(started)
    }

    /// The jobs of every pair, in round order, each with a deadline after the end of its round
    /// as estimated (twice the nominal time, plus a minute).
    fn plan_jobs(
        &self,
        req: &MatrixRequest,
        plan: &[Planned],
        now: u64,
    ) -> Reply<(Vec<NewJob>, Vec<RunPair>)> {
        // A mesh's sweeps aim at the workers' primary (IPv4) addresses: only for IPv4 pairs.
        let (mut jobs, sweeps) = if req.mesh && req.family != MatrixFamily::Ipv6 {
            let sources = plan
                .iter()
                .map(|p| (p.source.worker_id.as_str(), p.target.worker_id.clone()));
            self.mesh_sweeps(req, sources, 0..req.samples, now)?
        } else {
            Default::default()
        };
        let mut pairs = Vec::new();
        let per_pair = pair_seconds(req);
        // `--family both`: every pair over IPv4, then over IPv6 in the rounds after.
        let rounds = plan.iter().map(|p| p.round + 1).max().unwrap_or(0);
        for (nth, family) in req.family.families().iter().enumerate() {
            let family_rounds = rounds * nth as u32;
            for p in plan {
                let round = p.round + family_rounds;
                let pair = self.plan_pair(req, p, *family, round, per_pair, &sweeps, now)?;
                jobs.extend(pair.0);
                pairs.push(pair.1);
            }
        }
        Ok((jobs, pairs))
    }

    /// The jobs of one pair over `family` in `round` (a worker without an address of that
    /// family fails the run: the matrix never measures the other family in its place).
    #[allow(clippy::too_many_arguments)]
    fn plan_pair(
        &self,
        req: &MatrixRequest,
        p: &Planned,
        family: IpFamily,
        round: u32,
        per_pair: u64,
        sweeps: &HashMap<String, Vec<(u32, Uuid)>>,
        now: u64,
    ) -> Reply<(Vec<NewJob>, RunPair)> {
        let address = |w: &WorkerInfo| {
            w.address(family).ok_or_else(|| {
                let msg = format!(
                    "worker {} has no {family} address (its addresses: {}): the {family} \
                     matrix needs one on every worker",
                    w.pod_name,
                    list(w.addresses())
                );
                ApiError::new(ErrorCode::InvalidParam, msg).with_field("family")
            })
        };
        let (source_ip, target_ip) = (address(p.source)?, address(p.target)?);
        let round_end_s = per_pair * (u64::from(round) + 1);
        let timeout_s = (round_end_s * 2 + 60).min(u64::from(bounds::TIMEOUT_S_MAX)) as u32;
        // A mesh's sweeps measure the primary (IPv4) addresses' RTT: linked to those pairs only;
        // the pairs of the other family measure theirs with a ping per sample.
        let primary = IpFamily::of(p.source.pod_ip) == family && family == IpFamily::Ipv4;
        let mut planned = pair_params(req);
        if req.mesh && !primary {
            let ping = PingParams {
                count: req.ping_count,
                ..PingParams::default()
            };
            planned.extend((0..req.samples).map(|s| (s, JobParams::Ping(ping.clone()))));
        }
        let (mut jobs, mut run_jobs) = (Vec::new(), Vec::new());
        for (sample, params) in planned {
            let spec = JobSpec {
                family: Some(family),
                source: p.source.worker_id.clone(),
                target: Some(Target::Worker(p.target.worker_id.clone())),
                params: params.clone(),
                timeout_s: Some(timeout_s),
            };
            let job = self.admit(&spec, &[], now)?;
            run_jobs.push(run_job(job.job_id, &params, sample));
            jobs.push(job);
        }
        let sweep_jobs = sweeps.get(&p.source.worker_id).filter(|_| primary);
        for (sample, job_id) in sweep_jobs.into_iter().flatten() {
            run_jobs.push(RunJob {
                job_id: *job_id,
                kind: JobKind::Sweep,
                protocol: None,
                sample: *sample,
            });
        }
        let pair = RunPair {
            class: p.class,
            family,
            source: p.source.worker_id.clone(),
            source_pod: p.source.pod_name.clone(),
            source_node: p.source.node_name.clone(),
            source_ip,
            target: p.target.worker_id.clone(),
            target_pod: p.target.pod_name.clone(),
            target_node: p.target.node_name.clone(),
            target_ip,
            round,
            jobs: run_jobs,
        };
        Ok((jobs, pair))
    }

    /// A mesh's sweeps, queued before every other job of the run (they share nodes, so they all
    /// run at once): per source and sample one sweep toward the source's mesh targets (`pairs`:
    /// source → target worker ids). Returns the jobs and, per source worker, its (sample, job
    /// id)s.
    #[allow(clippy::type_complexity)]
    pub(crate) fn mesh_sweeps<'a>(
        &self,
        req: &MatrixRequest,
        pairs: impl Iterator<Item = (&'a str, String)>,
        samples: std::ops::Range<u32>,
        now: u64,
    ) -> Reply<(Vec<NewJob>, HashMap<String, Vec<(u32, Uuid)>>)> {
        let mut targets: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (source, target) in pairs {
            targets.entry(source).or_default().push(target);
        }
        let (mut jobs, mut ids) = (Vec::new(), HashMap::<String, Vec<(u32, Uuid)>>::new());
        for (source, targets) in targets {
            let params = sweep_params(req, targets);
            let timeout_s = (JobParams::Sweep(params.clone())
                .nominal_duration()
                .as_secs()
                + params_count_seconds(&params)
                + 60)
                .min(u64::from(bounds::TIMEOUT_S_MAX)) as u32;
            for sample in samples.clone() {
                let spec = JobSpec {
                    family: None,
                    source: source.to_string(),
                    target: None,
                    params: JobParams::Sweep(params.clone()),
                    timeout_s: Some(timeout_s),
                };
                let job = self.admit(&spec, &[], now)?;
                ids.entry(source.to_string())
                    .or_default()
                    .push((sample, job.job_id));
                jobs.push(job);
            }
        }
        Ok((jobs, ids))
    }

    pub(crate) async fn get_run(&self, payload: &[u8]) -> Reply<RunReport> {
        self.run_report(parse::<RunIdRequest>(payload)?.run_id)
            .await
    }

    pub(crate) async fn run_report(&self, run_id: Uuid) -> Reply<RunReport> {
        let (mut run, records) = self.load_run(run_id).await?;
        if crate::adaptive::stalled(&run, &records, now_ms()) {
            // The replica adding samples is gone: the run ends with the samples it has.
            run.sampling = Some(Sampling::Done);
        }
        Ok(report(&run, &records))
    }

    /// A run and its jobs' records.
    pub(crate) async fn load_run(&self, run_id: Uuid) -> Reply<(RunRecord, Vec<JobRecord>)> {
        let run = self.store.get_run(run_id).await.map_err(store_error)?;
        let run = run.ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("no run {run_id}")).with_field("run_id")
        })?;
        let ids: Vec<Uuid> = run.job_ids().collect();
        let records = self.store.get_many(&ids).await.map_err(store_error)?;
        Ok((run, records))
    }

    /// A copy of the API's handles for a task of its own (the `--samples auto` loop).
    fn detached(&self) -> Api {
        Api {
            members: self.members.clone(),
            store: self.store.clone(),
            leadership: self.leadership.clone(),
            client: self.client.clone(),
            js: self.js.clone(),
            dispatchers: self.dispatchers.clone(),
            cfg: self.cfg.clone(),
            schedules: self.schedules.clone(),
            schedules_changed: self.schedules_changed.clone(),
        }
    }

    pub(crate) async fn list_runs(&self, payload: &[u8]) -> Reply<ListRunsReply> {
        let req: ListRunsRequest = parse(payload)?;
        let ids = self
            .store
            .list_runs(req.limit.unwrap_or(20).clamp(1, 200))
            .await;
        let mut runs = Vec::new();
        for id in ids.map_err(store_error)? {
            if let Ok(r) = self.run_report(id).await {
                runs.push(r.progress);
            }
        }
        Ok(ListRunsReply { runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(req: MatrixRequest) -> Option<String> {
        validate(&req).err().map(|e| e.field.unwrap_or_default())
    }

    #[test]
    fn the_gate_and_the_sampling_bounds() {
        let with = |tolerance_percent, max_rtt_ratio| MatrixRequest {
            tolerance_percent,
            max_rtt_ratio,
            ..MatrixRequest::default()
        };
        assert_eq!(field(with(Some(0.0), Some(0.0001))), None);
        assert_eq!(field(with(Some(100.0), Some(MAX_RTT_RATIO_MAX))), None);
        for bad in [-0.1, 100.1, f64::NAN] {
            assert_eq!(
                field(with(Some(bad), None)).as_deref(),
                Some("tolerance_percent")
            );
        }
        for bad in [0.0, -1.0, MAX_RTT_RATIO_MAX + 1.0, f64::NAN] {
            assert_eq!(
                field(with(None, Some(bad))).as_deref(),
                Some("max_rtt_ratio")
            );
        }
        let auto = |samples, samples_auto_max| MatrixRequest {
            samples,
            samples_auto: true,
            samples_auto_max,
            ..MatrixRequest::default()
        };
        assert_eq!(field(auto(3, 3)), None);
        assert_eq!(field(auto(3, SAMPLES_AUTO_MAX)), None);
        assert_eq!(field(auto(3, 2)).as_deref(), Some("samples_auto_max"));
        assert_eq!(
            field(auto(3, SAMPLES_AUTO_MAX + 1)).as_deref(),
            Some("samples_auto_max")
        );
    }

    #[test]
    fn a_pair_s_jobs_are_its_once_jobs_then_each_sample_s() {
        let req = MatrixRequest {
            samples: 2,
            udp: true,
            ..MatrixRequest::default()
        };
        let all = pair_params(&req);
        assert_eq!(all.len(), 2 + 2 * sample_params(&req, 0).len());
        let kinds: Vec<JobKind> = sample_params(&req, 5)
            .iter()
            .map(|(_, p)| p.kind())
            .collect();
        assert_eq!(
            kinds,
            [
                JobKind::Ping,
                JobKind::Iperf3,
                JobKind::Iperf3,
                JobKind::Latency,
                JobKind::Latency
            ]
        );
        assert!(sample_params(&req, 5).iter().all(|(s, _)| *s == 5));
    }
}
