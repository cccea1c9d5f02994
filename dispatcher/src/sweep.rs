//! Resolves a sweep's targets at admission: named workers like single targets, or every live
//! worker but the source. The worker then probes exactly the resolved list.

use podperf_protocol::api::{ApiError, ErrorCode};
use podperf_protocol::sweep::{bounds::SWEEP_TARGETS_MAX, SweepParams, SweepTarget, SweepTargets};
use podperf_protocol::worker::{WorkerInfo, WorkerView};

use crate::membership::Members;

/// `params` with `resolved` filled in. A submitted `resolved` list is refused (only the
/// dispatcher fills it); so is a sweep that would have no target.
pub fn resolve(
    members: &Members,
    source: &WorkerView,
    params: &SweepParams,
    known: &[WorkerInfo],
) -> Result<SweepParams, ApiError> {
    if !params.resolved.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidParam,
            "the dispatcher resolves a sweep's targets: leave params.resolved out",
        )
        .with_field("params.resolved"));
    }
    let mut resolved: Vec<SweepTarget> = match &params.targets {
        SweepTargets::All => members
            .snapshot()
            .iter()
            .filter(|w| w.info.worker_id != source.info.worker_id)
            .map(target)
            .collect(),
        SweepTargets::Workers(names) => {
            let mut out = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                let w = members.resolve(name, known);
                let w = w.map_err(|e| e.with_field(format!("params.targets.workers[{i}]")))?;
                out.push(target(&w));
            }
            out
        }
    };
    let mut seen = std::collections::HashSet::new();
    resolved.retain(|t| seen.insert(t.worker_id.clone()));
    if resolved.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidParam,
            "no live worker to sweep besides the source",
        )
        .with_field("params.targets"));
    }
    if resolved.len() > SWEEP_TARGETS_MAX {
        resolved.truncate(SWEEP_TARGETS_MAX);
        tracing::warn!(
            max = SWEEP_TARGETS_MAX,
            "sweep of every worker cut to the maximum"
        );
    }
    Ok(SweepParams {
        resolved,
        ..params.clone()
    })
}

fn target(w: &WorkerView) -> SweepTarget {
    SweepTarget {
        worker_id: w.info.worker_id.clone(),
        node: w.info.node_name.clone(),
        ip: w.info.pod_ip,
        host_network: w.info.host_network,
    }
}
