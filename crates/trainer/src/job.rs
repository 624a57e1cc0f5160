//! A command's part in a multi-process job: start the process group the launcher set up (one
//! process, MPI, TCP or NCCL), refuse ranks whose configs differ, and stop every rank when one
//! fails — shared by training and evaluation.

use crate::config::ExperimentConfig;
use crate::error::{Result, TrainerError};
use crate::parallel::Mesh;

/// Runs `work` on this rank's mesh of the job; an error on any rank aborts the others (which
/// would otherwise wait in their next collective).
pub fn run_on_mesh<T>(cfg: &ExperimentConfig, work: impl FnOnce(&Mesh) -> Result<T>) -> Result<T> {
    run_on_mesh_for(&cfg.hash(), work)
}

/// As [`run_on_mesh`], for work whose configuration hashes to `hash` (a whole recipe).
pub fn run_on_mesh_for<T>(hash: &str, work: impl FnOnce(&Mesh) -> Result<T>) -> Result<T> {
    let group = palisade_sharding::init(palisade_sharding::backend_from_env()?)?;
    if group.world_size() > 1 && group.rank() == 0 {
        tracing::info!(
            "{} ranks over the {} backend",
            group.world_size(),
            group.backend()
        );
    }
    let mesh = Mesh::new(group);
    let result = palisade_sharding::check_same_config(mesh.world(), hash)
        .map_err(TrainerError::from)
        .and_then(|()| work(&mesh));
    if let Err(e) = &result {
        mesh.world().abort(&e.to_string());
    }
    result
}
