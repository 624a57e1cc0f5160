//! Rendezvous for the TCP group: rank 0 listens on the master address, the other ranks report
//! there with their own listening port, rank 0 sends everyone the table, and each rank then
//! connects to every lower rank and accepts every higher one (rank 0's links are the reports).

use crate::error::{Result, ShardingError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Start of every hello, so a stray connection is refused rather than misread.
const MAGIC: &[u8; 8] = b"palisad1";
/// How long ranks keep trying to reach rank 0 when no collective timeout is set.
const DEFAULT_CONNECT_WINDOW: Duration = Duration::from_secs(600);

/// One connection to a peer: separate handles for reading and writing, so a rank can send and
/// receive on it at once.
pub(crate) struct Link {
    pub(crate) reader: Mutex<TcpStream>,
    pub(crate) writer: Mutex<TcpStream>,
}

impl Link {
    fn new(stream: TcpStream) -> std::io::Result<Link> {
        // Collectives send many small framed messages; do not wait to batch them.
        stream.set_nodelay(true)?;
        Ok(Link {
            reader: Mutex::new(stream.try_clone()?),
            writer: Mutex::new(stream),
        })
    }
}

fn err(rank: usize, msg: String) -> ShardingError {
    ShardingError::Init {
        backend: "tcp",
        msg: format!("rank {rank}: {msg}"),
    }
}

fn write_u64s(s: &mut TcpStream, vals: &[u64]) -> std::io::Result<()> {
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    s.write_all(&bytes)
}

fn read_u64s(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u64>> {
    let mut bytes = vec![0u8; 8 * n];
    s.read_exact(&mut bytes)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect())
}

/// Sends this rank's hello: magic, rank, world size, listening port.
fn send_hello(s: &mut TcpStream, rank: usize, size: usize, port: u16) -> std::io::Result<()> {
    s.write_all(MAGIC)?;
    write_u64s(s, &[rank as u64, size as u64, port as u64])
}

/// Reads a hello and checks the world size; returns (rank, listening port).
fn read_hello(me: usize, s: &mut TcpStream, size: usize) -> Result<(usize, u16)> {
    let mut magic = [0u8; 8];
    s.read_exact(&mut magic)
        .map_err(|e| err(me, format!("reading a peer's hello: {e}")))?;
    if &magic != MAGIC {
        return Err(err(
            me,
            format!(
                "a connection from {:?} is not a palisade rank of this version",
                s.peer_addr().ok()
            ),
        ));
    }
    let v = read_u64s(s, 3).map_err(|e| err(me, format!("reading a peer's hello: {e}")))?;
    let (rank, world, port) = (v[0] as usize, v[1] as usize, v[2] as u16);
    if world != size || rank >= size {
        return Err(err(
            me,
            format!(
                "rank {rank} believes the world has {world} ranks, this one {size}: every \
                 launcher must agree on --nnodes and --nproc-per-node"
            ),
        ));
    }
    Ok((rank, port))
}

/// Keeps trying to connect to `addr` until `deadline` (the peer may not listen yet).
fn connect_retrying(me: usize, addr: &str, deadline: Instant) -> Result<TcpStream> {
    loop {
        let resolved: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| err(me, format!("cannot resolve {addr}: {e}")))?
            .collect();
        let mut last = None;
        for a in &resolved {
            match TcpStream::connect_timeout(a, Duration::from_secs(5)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        if Instant::now() >= deadline {
            return Err(err(
                me,
                format!(
                    "cannot reach {addr}: {}",
                    last.map_or("no address".into(), |e| e.to_string())
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Connects this rank to every other; returns one link per rank (`None` for itself).
pub(crate) fn connect_mesh(
    rank: usize,
    size: usize,
    master: &str,
    timeout: Option<Duration>,
) -> Result<Vec<Option<Link>>> {
    let mut links: Vec<Option<Link>> = (0..size).map(|_| None).collect();
    if size == 1 {
        return Ok(links);
    }
    let deadline = Instant::now() + timeout.unwrap_or(DEFAULT_CONNECT_WINDOW);
    let io = |what: &str, e: std::io::Error| err(rank, format!("{what}: {e}"));
    if rank == 0 {
        let listener = TcpListener::bind(master)
            .map_err(|e| io(&format!("cannot listen on the master address {master}"), e))?;
        let mut table = vec![(String::new(), 0u16); size];
        let mut streams: Vec<Option<TcpStream>> = (0..size).map(|_| None).collect();
        for _ in 1..size {
            let (mut s, from) = listener.accept().map_err(|e| io("accepting a rank", e))?;
            let (r, port) = read_hello(rank, &mut s, size)?;
            if r == 0 || streams[r].is_some() {
                return Err(err(rank, format!("rank {r} joined twice (from {from})")));
            }
            table[r] = (from.ip().to_string(), port);
            streams[r] = Some(s);
        }
        // Everyone learns where everyone listens.
        let text: String = table
            .iter()
            .map(|(ip, port)| format!("{ip} {port}\n"))
            .collect();
        for (r, s) in streams.iter_mut().enumerate().skip(1) {
            if let Some(s) = s {
                write_u64s(s, &[text.len() as u64])
                    .and_then(|()| s.write_all(text.as_bytes()))
                    .map_err(|e| io(&format!("sending the table to rank {r}"), e))?;
            }
        }
        for (r, s) in streams.into_iter().enumerate().skip(1) {
            if let Some(s) = s {
                links[r] = Some(Link::new(s).map_err(|e| io("configuring a link", e))?);
            }
        }
        return Ok(links);
    }

    let listener = TcpListener::bind("0.0.0.0:0").map_err(|e| io("cannot listen", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| io("cannot read the listening port", e))?
        .port();
    let mut to_master = connect_retrying(rank, master, deadline)?;
    send_hello(&mut to_master, rank, size, port).map_err(|e| io("greeting rank 0", e))?;
    let len = read_u64s(&mut to_master, 1).map_err(|e| io("reading the table", e))?[0];
    let mut text = vec![0u8; len as usize];
    to_master
        .read_exact(&mut text)
        .map_err(|e| io("reading the table", e))?;
    let text = String::from_utf8_lossy(&text).to_string();
    let table: Vec<(String, u16)> = text
        .lines()
        .map(|l| {
            let (ip, port) = l.split_once(' ').unwrap_or((l, "0"));
            (ip.to_string(), port.parse().unwrap_or(0))
        })
        .collect();
    links[0] = Some(Link::new(to_master).map_err(|e| io("configuring a link", e))?);
    // Lower ranks already listen: connect to them, then accept the higher ones.
    for (peer, (ip, port)) in table.iter().enumerate().take(rank).skip(1) {
        let addr = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        let mut s = connect_retrying(rank, &addr, deadline)?;
        send_hello(&mut s, rank, size, port_of(&listener))
            .map_err(|e| io(&format!("greeting rank {peer}"), e))?;
        links[peer] = Some(Link::new(s).map_err(|e| io("configuring a link", e))?);
    }
    for _ in rank + 1..size {
        let (mut s, from) = listener.accept().map_err(|e| io("accepting a rank", e))?;
        let (r, _) = read_hello(rank, &mut s, size)?;
        if r <= rank || links[r].is_some() {
            return Err(err(
                rank,
                format!("unexpected hello from rank {r} ({from})"),
            ));
        }
        links[r] = Some(Link::new(s).map_err(|e| io("configuring a link", e))?);
    }
    Ok(links)
}

fn port_of(l: &TcpListener) -> u16 {
    l.local_addr().map(|a| a.port()).unwrap_or(0)
}
