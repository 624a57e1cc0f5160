//! Rank discovery from the launcher's environment (OpenMPI, Slurm, PMI, palisade's launcher).

use crate::error::{Result, ShardingError};

/// Where this process sits among all ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankInfo {
    /// Global rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Rank on this node (picks the CUDA device).
    pub local_rank: usize,
    /// Ranks on this node (they share its cores).
    pub local_world: usize,
    /// Which launcher's variables were read.
    pub source: &'static str,
}

impl RankInfo {
    /// The single-process default.
    pub fn single() -> RankInfo {
        RankInfo {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            local_world: 1,
            source: "none",
        }
    }
}

/// Variable names per launcher: (rank, world size, local rank, local world size, name). First
/// match wins.
const LAUNCHERS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "PALISADE_RANK",
        "PALISADE_WORLD_SIZE",
        "PALISADE_LOCAL_RANK",
        "PALISADE_LOCAL_WORLD_SIZE",
        "palisade",
    ),
    (
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "openmpi",
    ),
    (
        "PMI_RANK",
        "PMI_SIZE",
        "MPI_LOCALRANKID",
        "MPI_LOCALNRANKS",
        "pmi",
    ),
    (
        "SLURM_PROCID",
        "SLURM_NTASKS",
        "SLURM_LOCALID",
        "SLURM_NTASKS_PER_NODE",
        "slurm",
    ),
];

/// This node's entry of Slurm's `SLURM_TASKS_PER_NODE` (`2(x3),1`: three nodes of 2, one of 1).
fn slurm_tasks_on_node(tasks_per_node: &str, node: usize) -> Option<usize> {
    let mut counts = Vec::new();
    for part in tasks_per_node.split(',') {
        let (n, times) = match part.split_once("(x") {
            Some((n, rest)) => (n, rest.trim_end_matches(')').parse().ok()?),
            None => (part, 1),
        };
        let n: usize = n.trim().parse().ok()?;
        counts.extend(std::iter::repeat_n(n, times));
    }
    counts.get(node).copied()
}

/// Reads rank, world size and local rank from the environment given by `get`.
pub fn discover_from(get: impl Fn(&str) -> Option<String>) -> Result<RankInfo> {
    let parse = |var: &str, what: &'static str| -> Result<Option<usize>> {
        match get(var) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ShardingError::BadEnv {
                    var: var.to_string(),
                    value: v,
                    what,
                }),
        }
    };
    for &(rank_var, size_var, local_var, local_size_var, source) in LAUNCHERS {
        let (Some(rank), Some(world_size)) =
            (parse(rank_var, "rank")?, parse(size_var, "world size")?)
        else {
            continue;
        };
        if rank >= world_size {
            return Err(ShardingError::BadEnv {
                var: rank_var.to_string(),
                value: rank.to_string(),
                what: "rank below the world size",
            });
        }
        let local_rank = parse(local_var, "local rank")?.unwrap_or(0);
        let slurm_node = || {
            let node = parse("SLURM_NODEID", "node index")?.unwrap_or(0);
            Ok::<_, ShardingError>(
                get("SLURM_TASKS_PER_NODE").and_then(|t| slurm_tasks_on_node(&t, node)),
            )
        };
        let local_world = match parse(local_size_var, "local world size")? {
            Some(n) => n,
            None if source == "slurm" => slurm_node()?.unwrap_or(1),
            None => 1,
        };
        return Ok(RankInfo {
            rank,
            world_size,
            local_rank,
            local_world: local_world.max(local_rank + 1),
            source,
        });
    }
    Ok(RankInfo::single())
}

/// Reads rank information from this process's environment.
pub fn discover() -> Result<RankInfo> {
    discover_from(|k| std::env::var(k).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_openmpi_and_slurm() {
        let r = discover_from(env(&[
            ("OMPI_COMM_WORLD_RANK", "3"),
            ("OMPI_COMM_WORLD_SIZE", "4"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
        ]))
        .unwrap();
        assert_eq!(
            (r.rank, r.world_size, r.local_rank, r.source),
            (3, 4, 1, "openmpi")
        );
        // No local size given: at least the local rank's count.
        assert_eq!(r.local_world, 2);
        let r = discover_from(env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2")])).unwrap();
        assert_eq!((r.rank, r.world_size, r.source), (0, 2, "slurm"));
        assert_eq!(r.local_world, 1);
        let r = discover_from(env(&[
            ("SLURM_PROCID", "6"),
            ("SLURM_NTASKS", "7"),
            ("SLURM_NODEID", "3"),
            ("SLURM_TASKS_PER_NODE", "2(x3),1"),
        ]))
        .unwrap();
        assert_eq!(r.local_world, 1, "the fourth node runs one task");
        let r = discover_from(env(&[
            ("OMPI_COMM_WORLD_RANK", "0"),
            ("OMPI_COMM_WORLD_SIZE", "8"),
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "4"),
        ]))
        .unwrap();
        assert_eq!(r.local_world, 4);
        assert_eq!(slurm_tasks_on_node("4(x2)", 1), Some(4));
        assert_eq!(slurm_tasks_on_node("4(x2)", 2), None);
        assert_eq!(discover_from(env(&[])).unwrap(), RankInfo::single());
    }

    #[test]
    fn rejects_malformed_values() {
        let err = discover_from(env(&[("SLURM_PROCID", "x"), ("SLURM_NTASKS", "2")])).unwrap_err();
        assert!(err.to_string().contains("SLURM_PROCID"), "{err}");
        let err = discover_from(env(&[("PMI_RANK", "2"), ("PMI_SIZE", "2")])).unwrap_err();
        assert!(err.to_string().contains("PMI_RANK"), "{err}");
    }
}
