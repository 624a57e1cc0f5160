//! The TCP process group, for ranks started by `palisade launch` (or any launcher that sets
//! `PALISADE_RANK`, `PALISADE_WORLD_SIZE` and `PALISADE_MASTER`).
//!
//! MPI can only join processes that an MPI launcher started, so ranks started independently
//! (one `palisade launch` per node, like torchrun) meet over TCP instead: rank 0 listens on the
//! master address, every rank reports its own listening port there, and the ranks then open one
//! connection per pair. Collectives run over host memory: all-reduce, all-gather and
//! reduce-scatter as rings (each rank sends and receives `2·(W−1)/W` of the data, as MPI's and
//! NCCL's large-message algorithms do), broadcast as a star from the root.

use crate::error::{Result, ShardingError};
use crate::group::{ProcessGroup, ReduceOp};
use crate::rendezvous::{connect_mesh, Link};
use crate::tensor_buf::{as_bytes, as_mut_bytes, check, empty_host, host};
use crate::watchdog::{Watchdog, TIMEOUT_ENV};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tch::{Kind, Tensor};

/// Environment variable with the rendezvous address `HOST:PORT` that rank 0 listens on.
pub const MASTER_ENV: &str = "PALISADE_MASTER";
/// Exit code of a rank stopped by the collective watchdog.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code of a rank that gave up (see [`ProcessGroup::abort`]).
pub const EXIT_RANK_FAILED: i32 = 1;

/// The connections of this process to every other rank.
struct Mesh {
    // Field order is drop order: the watchdog stops before the connections close.
    watchdog: Watchdog,
    rank: usize,
    size: usize,
    links: Vec<Option<Link>>,
}

/// Set once a mesh was built: a second one would need a second rendezvous.
static MESH: Mutex<Option<Weak<Mesh>>> = Mutex::new(None);

impl Mesh {
    fn link(&self, op: &'static str, peer: usize) -> Result<&Link> {
        self.links
            .get(peer)
            .and_then(Option::as_ref)
            .ok_or_else(|| ShardingError::Collective {
                op,
                msg: format!("rank {} has no connection to rank {peer}", self.rank),
            })
    }

    fn io_err(&self, op: &'static str, peer: usize, e: std::io::Error) -> ShardingError {
        let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "closed the connection (it exited or failed)".to_string()
        } else {
            e.to_string()
        };
        ShardingError::Collective {
            op,
            msg: format!("rank {} talking to rank {peer}: {why}", self.rank),
        }
    }

    /// Sends one framed message: group tag, byte length, bytes.
    fn send(&self, op: &'static str, peer: usize, tag: u32, bytes: &[u8]) -> Result<()> {
        let link = self.link(op, peer)?;
        let mut w = link.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut header = [0u8; 12];
        header[..4].copy_from_slice(&tag.to_le_bytes());
        header[4..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        w.write_all(&header)
            .and_then(|()| w.write_all(bytes))
            .map_err(|e| self.io_err(op, peer, e))
    }

    /// Receives one framed message into `buf`, which must be exactly its size.
    fn recv(&self, op: &'static str, peer: usize, tag: u32, buf: &mut [u8]) -> Result<()> {
        let link = self.link(op, peer)?;
        let mut r = link.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut header = [0u8; 12];
        r.read_exact(&mut header)
            .map_err(|e| self.io_err(op, peer, e))?;
        let got_tag = u32::from_le_bytes(header[..4].try_into().unwrap_or_default());
        let len = u64::from_le_bytes(header[4..].try_into().unwrap_or_default());
        if got_tag != tag || len != buf.len() as u64 {
            return Err(ShardingError::Collective {
                op,
                msg: format!(
                    "rank {} expected {} bytes of group {tag:#x} from rank {peer}, which sent {len} \
                     bytes of group {got_tag:#x}: the ranks are calling different collectives",
                    self.rank,
                    buf.len()
                ),
            });
        }
        r.read_exact(buf).map_err(|e| self.io_err(op, peer, e))
    }

    /// Sends to `to` while receiving from `from` (a thread sends, so neither side blocks the
    /// other when messages exceed the socket buffers).
    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        op: &'static str,
        tag: u32,
        to: usize,
        out: &[u8],
        from: usize,
        inc: &mut [u8],
    ) -> Result<()> {
        std::thread::scope(|s| {
            let sender = s.spawn(|| self.send(op, to, tag, out));
            let got = self.recv(op, from, tag, inc);
            let sent = sender.join().unwrap_or_else(|_| {
                Err(ShardingError::Collective {
                    op,
                    msg: "sending thread panicked".into(),
                })
            });
            got.and(sent)
        })
    }
}

/// A group of ranks connected by TCP; see the module docs.
pub struct TcpGroup {
    mesh: Arc<Mesh>,
    /// Global ranks of the members, in group order.
    members: Vec<usize>,
    /// This process's position in `members`.
    rank: usize,
    /// Identifies the group in every message, so mismatched collectives fail loudly.
    tag: u32,
}

impl TcpGroup {
    /// Meets the other ranks at `master` (`HOST:PORT`, where rank 0 listens) and connects to
    /// each. Once per process: `timeout` also bounds the rendezvous.
    pub fn connect(
        rank: usize,
        size: usize,
        master: &str,
        timeout: Option<Duration>,
    ) -> Result<TcpGroup> {
        let mut slot = MESH.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(weak) = slot.as_ref() {
            return match weak.upgrade() {
                Some(mesh) if (mesh.rank, mesh.size) == (rank, size) => Ok(TcpGroup::world(mesh)),
                _ => Err(ShardingError::Init {
                    backend: "tcp",
                    msg: "this process already joined a TCP group and closed it; keep one \
                          process group alive for the whole run"
                        .into(),
                }),
            };
        }
        let watchdog = Watchdog::new(
            timeout,
            Box::new(move |op, waited| {
                eprintln!(
                    "palisade: rank {rank} of {size}: collective {op} has waited {:.0} s, past the \
                     {TIMEOUT_ENV} limit; another rank has stopped, crashed or is calling a \
                     different collective. Stopping this rank.",
                    waited.as_secs_f64()
                );
                std::process::exit(EXIT_TIMEOUT)
            }),
        );
        let links = {
            let _w = watchdog.watch("rendezvous");
            connect_mesh(rank, size, master, timeout)?
        };
        let mesh = Arc::new(Mesh {
            watchdog,
            rank,
            size,
            links,
        });
        *slot = Some(Arc::downgrade(&mesh));
        Ok(TcpGroup::world(mesh))
    }

    fn world(mesh: Arc<Mesh>) -> TcpGroup {
        TcpGroup {
            members: (0..mesh.size).collect(),
            rank: mesh.rank,
            tag: 1,
            mesh,
        }
    }

    fn next(&self) -> usize {
        self.members[(self.rank + 1) % self.members.len()]
    }

    fn prev(&self) -> usize {
        let w = self.members.len();
        self.members[(self.rank + w - 1) % w]
    }

    fn peer(&self, op: &'static str, peer: usize) -> Result<usize> {
        self.members
            .get(peer)
            .copied()
            .ok_or_else(|| ShardingError::Collective {
                op,
                msg: format!(
                    "rank {} named rank {peer}, outside the group of {}",
                    self.rank,
                    self.members.len()
                ),
            })
    }

    fn check_avg(&self, op: &'static str, t: &Tensor, how: ReduceOp) -> Result<()> {
        if how == ReduceOp::Avg && !t.is_floating_point() {
            return Err(ShardingError::BadTensor {
                op,
                rank: self.rank,
                msg: format!("cannot average a {:?} tensor", t.kind()),
            });
        }
        Ok(())
    }

    /// A zero-padded flat copy of `t` with `chunks` equal chunks; returns it and the chunk size.
    fn flat_copy(t: &Tensor, chunks: usize) -> (Tensor, i64) {
        let n = t.numel() as i64;
        let k = (n + chunks as i64 - 1) / chunks as i64;
        let buf = Tensor::zeros([k * chunks as i64], (t.kind(), tch::Device::Cpu));
        tch::no_grad(|| buf.narrow(0, 0, n).copy_(&t.detach().reshape([-1])));
        (buf, k)
    }

    /// Ring reduce-scatter in place: afterwards chunk `rank` of `buf` holds the sum over ranks.
    fn ring_reduce_scatter(&self, op: &'static str, buf: &Tensor, k: i64) -> Result<()> {
        let w = self.members.len();
        let mut inc = empty_host(&[k], buf.kind());
        for s in 0..w - 1 {
            // Chunk c travels rank c+1 → c+2 → … → c, gaining each rank's share on the way.
            let send_c = (self.rank + 2 * w - s - 1) % w;
            let recv_c = (self.rank + 2 * w - s - 2) % w;
            let out = buf.narrow(0, send_c as i64 * k, k);
            self.mesh.exchange(
                op,
                self.tag,
                self.next(),
                as_bytes(&out),
                self.prev(),
                as_mut_bytes(&mut inc),
            )?;
            let mut dst = buf.narrow(0, recv_c as i64 * k, k);
            dst += &inc;
        }
        Ok(())
    }

    /// Ring all-gather in place: rank `r` starts owning chunk `r`; afterwards all hold all.
    fn ring_all_gather(&self, op: &'static str, buf: &Tensor, k: i64) -> Result<()> {
        let w = self.members.len();
        for s in 0..w - 1 {
            let send_c = (self.rank + w - s) % w;
            let recv_c = (self.rank + 2 * w - s - 1) % w;
            let out = buf.narrow(0, send_c as i64 * k, k);
            let mut inc = buf.narrow(0, recv_c as i64 * k, k);
            self.mesh.exchange(
                op,
                self.tag,
                self.next(),
                as_bytes(&out),
                self.prev(),
                as_mut_bytes(&mut inc),
            )?;
        }
        Ok(())
    }

    /// All-reduce, watched and reported under the collective name `name`.
    fn reduce_named(&self, name: &'static str, t: &mut Tensor, op: ReduceOp) -> Result<()> {
        check(name, self.rank, t)?;
        self.check_avg(name, t, op)?;
        let w = self.members.len();
        if w == 1 {
            return Ok(());
        }
        let (buf, k) = TcpGroup::flat_copy(t, w);
        {
            let _w = self.mesh.watchdog.watch(name);
            self.ring_reduce_scatter(name, &buf, k)?;
            self.ring_all_gather(name, &buf, k)?;
        }
        let out = buf.narrow(0, 0, t.numel() as i64).view(t.size().as_slice());
        write_into(t, &self.finish(out, op));
        Ok(())
    }

    fn finish(&self, t: Tensor, how: ReduceOp) -> Tensor {
        match how {
            ReduceOp::Sum => t,
            ReduceOp::Avg => t / self.members.len() as f64,
        }
    }
}

/// Writes `src` into `dst` without recording an autograd operation (parameters are leaves).
fn write_into(dst: &mut Tensor, src: &Tensor) {
    tch::no_grad(|| dst.copy_(src));
}

impl ProcessGroup for TcpGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.members.len()
    }

    fn all_reduce(&self, t: &mut Tensor, op: ReduceOp) -> Result<()> {
        self.reduce_named("all_reduce", t, op)
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        const OP: &str = "all_gather";
        check(OP, self.rank, t)?;
        let w = self.members.len() as i64;
        let k = t.numel() as i64;
        let buf = Tensor::empty([w * k], (t.kind(), tch::Device::Cpu));
        tch::no_grad(|| {
            buf.narrow(0, self.rank as i64 * k, k)
                .copy_(&t.detach().reshape([-1]))
        });
        {
            let _w = self.mesh.watchdog.watch(OP);
            self.ring_all_gather(OP, &buf, k)?;
        }
        let mut shape = t.size();
        match shape.first_mut() {
            Some(d0) => *d0 *= w,
            None => shape.push(w),
        }
        Ok(buf.view(shape.as_slice()).to_device(t.device()))
    }

    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        const OP: &str = "broadcast";
        check(OP, self.rank, t)?;
        let root_global = self.peer(OP, root)?;
        let _w = self.mesh.watchdog.watch(OP);
        if self.rank == root {
            let src = host(t);
            for &m in self.members.iter().filter(|&&m| m != root_global) {
                self.mesh.send(OP, m, self.tag, as_bytes(&src))?;
            }
        } else {
            let mut buf = empty_host(&t.size(), t.kind());
            self.mesh
                .recv(OP, root_global, self.tag, as_mut_bytes(&mut buf))?;
            write_into(t, &buf);
        }
        Ok(())
    }

    fn reduce_scatter(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor> {
        const OP: &str = "reduce_scatter";
        check(OP, self.rank, t)?;
        self.check_avg(OP, t, op)?;
        let w = self.members.len() as i64;
        let mut shape = t.size();
        let rows = shape.first().copied().unwrap_or(0);
        if shape.is_empty() || rows % w != 0 {
            return Err(ShardingError::BadTensor {
                op: OP,
                rank: self.rank,
                msg: format!("shape {shape:?}: dim 0 must divide evenly among {w} ranks"),
            });
        }
        shape[0] = rows / w;
        let (buf, k) = TcpGroup::flat_copy(t, w as usize);
        if w > 1 {
            let _w = self.mesh.watchdog.watch(OP);
            self.ring_reduce_scatter(OP, &buf, k)?;
        }
        let mine = buf
            .narrow(0, self.rank as i64 * k, k)
            .view(shape.as_slice());
        Ok(self.finish(mine, op).to_device(t.device()))
    }

    fn send(&self, t: &Tensor, dest: usize) -> Result<()> {
        const OP: &str = "send";
        check(OP, self.rank, t)?;
        if dest == self.rank {
            return Err(ShardingError::Collective {
                op: OP,
                msg: format!("rank {dest} cannot send to itself with a blocking send"),
            });
        }
        let dest = self.peer(OP, dest)?;
        let src = host(t);
        let _w = self.mesh.watchdog.watch(OP);
        self.mesh.send(OP, dest, self.tag, as_bytes(&src))
    }

    fn recv(&self, t: &mut Tensor, src: usize) -> Result<()> {
        const OP: &str = "recv";
        check(OP, self.rank, t)?;
        let src = self.peer(OP, src)?;
        let mut buf = empty_host(&t.size(), t.kind());
        {
            let _w = self.mesh.watchdog.watch(OP);
            self.mesh.recv(OP, src, self.tag, as_mut_bytes(&mut buf))?;
        }
        write_into(t, &buf);
        Ok(())
    }

    fn send_recv(&self, send: &Tensor, dest: usize, recv: &mut Tensor, src: usize) -> Result<()> {
        const OP: &str = "send_recv";
        check(OP, self.rank, send)?;
        check(OP, self.rank, recv)?;
        let (dest, src) = (self.peer(OP, dest)?, self.peer(OP, src)?);
        let me = self.members[self.rank];
        let out = host(send);
        let mut buf = empty_host(&recv.size(), recv.kind());
        if dest == me || src == me {
            if dest != src {
                return Err(ShardingError::Collective {
                    op: OP,
                    msg: format!("rank {} may exchange with itself only both ways", self.rank),
                });
            }
            write_into(recv, &out);
            return Ok(());
        }
        {
            let _w = self.mesh.watchdog.watch(OP);
            self.mesh.exchange(
                OP,
                self.tag,
                dest,
                as_bytes(&out),
                src,
                as_mut_bytes(&mut buf),
            )?;
        }
        write_into(recv, &buf);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        let mut t = Tensor::zeros([1], (Kind::Int64, tch::Device::Cpu));
        self.reduce_named("barrier", &mut t, ReduceOp::Sum)
    }

    fn split(&self, color: usize, key: usize) -> Result<Box<dyn ProcessGroup>> {
        let me = self.members[self.rank];
        let all = self.all_gather(&Tensor::from_slice(&[color as i64, key as i64, me as i64]))?;
        let all = Vec::<i64>::try_from(&all).map_err(|e| ShardingError::Collective {
            op: "split",
            msg: e.to_string(),
        })?;
        let mut mine: Vec<(i64, i64)> = all
            .chunks(3)
            .filter(|c| c[0] == color as i64)
            .map(|c| (c[1], c[2]))
            .collect();
        mine.sort();
        let members: Vec<usize> = mine.iter().map(|&(_, g)| g as usize).collect();
        let rank = members.iter().position(|&g| g == me).unwrap_or(0);
        Ok(Box::new(TcpGroup {
            mesh: self.mesh.clone(),
            members,
            rank,
            tag: self
                .tag
                .wrapping_mul(0x9E37_79B1)
                .wrapping_add(color as u32 + 1),
        }))
    }

    fn abort(&self, reason: &str) {
        if self.mesh.size <= 1 {
            return;
        }
        eprintln!(
            "palisade: rank {} of {} failed: {reason}\npalisade: stopping this rank; the launcher \
             stops the others",
            self.mesh.rank, self.mesh.size
        );
        std::process::exit(EXIT_RANK_FAILED)
    }

    fn backend(&self) -> &'static str {
        "tcp"
    }
}
