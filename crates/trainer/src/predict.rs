//! `palisade predict` on every rank the launcher started: one example needs no data
//! parallelism, so the ranks form one tensor-parallel group, each keeping its slices of the
//! model (a model too big for one device), and decode together; rank 0 has the answer to print.

use crate::device::set_threads;
use crate::error::{Result, TrainerError};
use crate::job::run_on_mesh_for;
use crate::parallel::{first_undivided, pali_tp_dims, TensorParallel};
use palisade_evaluator::runs::predict::{predict_with, PredictRequest, Predicted};
use palisade_model::pali::PaliModel;
use sha2::Digest;

/// Broadcast bucket for the ranks' first copy of rank 0's weights.
const BUCKET_BYTES: usize = 25 << 20;

/// Runs `req` on one process, or split over all the job's ranks; `Some` on rank 0 alone.
pub fn predict(req: &PredictRequest) -> Result<Option<Predicted>> {
    let rank = palisade_sharding::discover()?;
    if rank.world_size <= 1 {
        let model = PaliModel::load(req.checkpoint, tch::Device::Cpu)?;
        return Ok(Some(predict_with(&model, req)?));
    }
    // The ranks share the node's cores rather than each taking all of them.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    set_threads((cores / rank.local_world).max(1));
    // Every rank must be asked the same question (a rank with another prompt would decode
    // other tokens and wait forever in a collective).
    let digest = sha2::Sha256::digest(format!("{req:?}").as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    run_on_mesh_for(&hash, |mesh| {
        let tp = mesh.size();
        let model = PaliModel::load(req.checkpoint, tch::Device::Cpu)?;
        let context = |e: String| {
            TrainerError::Config(format!(
                "palisade predict on {tp} ranks splits {} {tp} ways: {e}",
                req.checkpoint.display()
            ))
        };
        if let Some((what, n)) = first_undivided(tp, &pali_tp_dims(model.config())) {
            return Err(context(format!(
                "{tp} does not divide {what} ({n}); run it on a number of ranks that does"
            )));
        }
        let mesh = mesh.with_tp(tp)?;
        let split = TensorParallel::new(&model.vs, &mesh, BUCKET_BYTES, false)
            .map_err(|e| context(e.to_string()))?
            .expect("a mesh of more than one rank has a tensor-parallel group");
        let out = split.during(|| Ok(predict_with(&model, req)?))?;
        Ok((mesh.rank() == 0).then_some(out))
    })
}
