//! The job's ranks as a mesh with named dimensions: `dp` (data parallel) outside, `tp`
//! (tensor parallel) inside, so that a tensor-parallel group is consecutive ranks and stays
//! within a node (NVLink) when ranks are placed node by node.

use crate::error::{Result, TrainerError};
use palisade_sharding::ProcessGroup;

/// The ranks of a job arranged along named dimensions, data-parallel × tensor-parallel.
pub struct Mesh {
    world: Box<dyn ProcessGroup>,
    /// The ranks holding the same tensor slices (every rank without tensor parallelism).
    dp: Option<Box<dyn ProcessGroup>>,
    /// The ranks splitting one model replica's layers (none: size 1).
    tp: Option<Box<dyn ProcessGroup>>,
}

impl Mesh {
    /// Data parallelism over every rank of `world`.
    pub fn new(world: Box<dyn ProcessGroup>) -> Mesh {
        Mesh {
            world,
            dp: None,
            tp: None,
        }
    }

    /// The same ranks as a `world / tp` × `tp` mesh, tensor-parallel ranks innermost: ranks
    /// `k·tp .. (k+1)·tp` form one tensor-parallel group. Every rank must call it.
    pub fn with_tp(&self, tp: usize) -> Result<Mesh> {
        let (rank, size) = (self.rank(), self.size());
        check_tp(tp, size)?;
        let world = self.world.split(0, rank)?;
        if tp == 1 {
            return Ok(Mesh::new(world));
        }
        let dp = self.world.split(rank % tp, rank)?;
        let group = self.world.split(rank / tp, rank)?;
        Ok(Mesh {
            world,
            dp: Some(dp),
            tp: Some(group),
        })
    }

    /// Every rank of the job.
    pub fn world(&self) -> &dyn ProcessGroup {
        &*self.world
    }

    /// The data-parallel group this rank belongs to.
    pub fn dp(&self) -> &dyn ProcessGroup {
        self.dp.as_deref().unwrap_or(&*self.world)
    }

    /// The tensor-parallel group this rank belongs to, if the mesh has one.
    pub fn tp(&self) -> Option<&dyn ProcessGroup> {
        self.tp.as_deref()
    }

    /// Ranks in this rank's tensor-parallel group (1 without one).
    pub fn tp_size(&self) -> usize {
        self.tp().map_or(1, |g| g.world_size())
    }

    /// The dimensions, outermost first, with their sizes.
    pub fn dims(&self) -> Vec<(&'static str, usize)> {
        let mut d = vec![("dp", self.dp().world_size())];
        if let Some(t) = self.tp() {
            d.push(("tp", t.world_size()));
        }
        d
    }

    /// This rank in the whole job.
    pub fn rank(&self) -> usize {
        self.world.rank()
    }

    /// Ranks in the whole job.
    pub fn size(&self) -> usize {
        self.world.world_size()
    }
}

/// Refuses a tensor-parallel size of 0, above the world, or not dividing it.
pub fn check_tp(tp: usize, world: usize) -> Result<()> {
    if tp == 0 || tp > world || !world.is_multiple_of(tp) {
        return Err(TrainerError::Config(format!(
            "key parallel.tp: {tp} does not divide the {world} ranks of the job into \
             tensor-parallel groups (it must be at least 1, at most {world}, and divide {world})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_is_a_data_parallel_mesh_of_one() {
        let m = Mesh::new(Box::new(palisade_sharding::SingleProcess));
        assert_eq!(m.dims(), vec![("dp", 1)]);
        assert_eq!((m.rank(), m.size(), m.dp().world_size()), (0, 1, 1));
        assert_eq!(m.with_tp(1).unwrap().dims(), vec![("dp", 1)]);
    }

    #[test]
    fn a_tp_size_that_does_not_divide_the_world_names_both() {
        let e = check_tp(3, 4).unwrap_err().to_string();
        assert!(e.contains("parallel.tp: 3") && e.contains("4 ranks"), "{e}");
        assert!(check_tp(8, 4).is_err() && check_tp(0, 4).is_err());
        assert!(check_tp(2, 4).is_ok() && check_tp(4, 4).is_ok());
    }
}
