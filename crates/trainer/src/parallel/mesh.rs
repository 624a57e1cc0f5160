//! The job's ranks as a mesh with named dimensions.

use palisade_sharding::ProcessGroup;

/// The ranks of a job arranged along named dimensions. Today the one dimension is `dp` (data
/// parallel: every rank); tensor parallelism adds an inner `tp` dimension.
pub struct Mesh {
    world: Box<dyn ProcessGroup>,
}

impl Mesh {
    /// Data parallelism over every rank of `world`.
    pub fn new(world: Box<dyn ProcessGroup>) -> Mesh {
        Mesh { world }
    }

    /// Every rank of the job.
    pub fn world(&self) -> &dyn ProcessGroup {
        &*self.world
    }

    /// The data-parallel group this rank belongs to.
    pub fn dp(&self) -> &dyn ProcessGroup {
        &*self.world
    }

    /// The dimensions, outermost first, with their sizes.
    pub fn dims(&self) -> Vec<(&'static str, usize)> {
        vec![("dp", self.dp().world_size())]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_is_a_data_parallel_mesh_of_one() {
        let m = Mesh::new(Box::new(palisade_sharding::SingleProcess));
        assert_eq!(m.dims(), vec![("dp", 1)]);
        assert_eq!((m.rank(), m.size(), m.dp().world_size()), (0, 1, 1));
    }
}
