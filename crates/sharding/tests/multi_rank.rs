//! Multi-rank tests of the MPI and TCP process groups.
//!
//! `cargo test` runs this binary (no libtest harness) as the driver: it re-executes itself on
//! N ranks under `mpirun` (MPI backend) or palisade's launcher (TCP backend), see
//! `palisade_sharding::mpi_harness`, and every rank then checks its own results and exits
//! non-zero on the first wrong one.

use palisade_sharding::mpi_harness::{self, Case, Via};
use palisade_sharding::{
    all_gather_bytes, all_reduce_bucketed, broadcast_bucketed, check_same_config, init, Backend,
    ProcessGroup, ReduceOp,
};
use std::process::ExitCode;
use tch::{Device, Kind, Tensor};

const CASES: &[Case] = &[
    Case {
        name: "collectives_np2",
        via: Via::Mpirun,
        np: 2,
        scenario: "collectives",
        env: &[],
        succeeds: true,
        output_has: &["rank 1 of 2: collectives ok"],
    },
    Case {
        name: "collectives_np4",
        via: Via::Mpirun,
        np: 4,
        scenario: "collectives",
        env: &[],
        succeeds: true,
        output_has: &["rank 3 of 4: collectives ok"],
    },
    Case {
        name: "config_mismatch_names_ranks_np4",
        via: Via::Mpirun,
        np: 4,
        scenario: "config_mismatch",
        env: &[],
        succeeds: true,
        output_has: &["rank 2 of 4: config mismatch refused"],
    },
    Case {
        name: "timeout_aborts_naming_the_collective",
        via: Via::Mpirun,
        np: 2,
        scenario: "timeout",
        env: &[("PALISADE_COLLECTIVE_TIMEOUT_S", "1")],
        succeeds: false,
        output_has: &[
            "rank 0 of 2: collective barrier has waited",
            "PALISADE_COLLECTIVE_TIMEOUT_S",
        ],
    },
    Case {
        name: "world_mismatch_is_refused",
        via: Via::Mpirun,
        np: 2,
        scenario: "world_mismatch",
        env: &[("PALISADE_RANK", "0"), ("PALISADE_WORLD_SIZE", "3")],
        succeeds: true,
        output_has: &["rank 1 of 2: world mismatch refused"],
    },
    Case {
        name: "failing_rank_stops_the_job",
        via: Via::Mpirun,
        np: 2,
        scenario: "abort",
        env: &[],
        succeeds: false,
        output_has: &["rank 1 of 2 failed: disk full", "stopping every rank"],
    },
    Case {
        name: "tcp_collectives_np2",
        via: Via::Launch,
        np: 2,
        scenario: "collectives",
        env: &[],
        succeeds: true,
        output_has: &["rank 1 of 2: collectives ok"],
    },
    Case {
        name: "tcp_collectives_np4",
        via: Via::Launch,
        np: 4,
        scenario: "collectives",
        env: &[],
        succeeds: true,
        output_has: &["rank 3 of 4: collectives ok"],
    },
    Case {
        name: "tcp_config_mismatch_names_ranks_np4",
        via: Via::Launch,
        np: 4,
        scenario: "config_mismatch",
        env: &[],
        succeeds: true,
        output_has: &["rank 2 of 4: config mismatch refused"],
    },
    Case {
        name: "tcp_timeout_stops_naming_the_collective",
        via: Via::Launch,
        np: 2,
        scenario: "timeout",
        env: &[("PALISADE_COLLECTIVE_TIMEOUT_S", "1")],
        succeeds: false,
        output_has: &[
            "launcher exit code 124",
            "rank 0 of 2: collective barrier has waited",
        ],
    },
    Case {
        name: "tcp_failing_rank_stops_the_job",
        via: Via::Launch,
        np: 2,
        scenario: "abort",
        env: &[],
        succeeds: false,
        output_has: &["rank 1 of 2 failed: disk full"],
    },
];

fn main() -> ExitCode {
    mpi_harness::main(CASES, worker)
}

fn worker(scenario: &str) {
    match scenario {
        "collectives" => collectives(),
        "config_mismatch" => config_mismatch(),
        "timeout" => timeout(),
        "world_mismatch" => world_mismatch(),
        "abort" => abort(),
        other => panic!("unknown scenario {other}"),
    }
}

fn start() -> Box<dyn ProcessGroup> {
    init(Backend::Auto).expect("process group starts")
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).expect("readable tensor")
}

#[track_caller]
fn assert_values(what: &str, t: &Tensor, want: &[f64]) {
    let got = values(t);
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{what}: got {got:?}, want {want:?}");
    }
}

fn collectives() {
    let g = start();
    let (r, w) = (g.rank(), g.world_size());
    let (rf, wf) = (r as f64, w as f64);
    let info = palisade_sharding::discover().expect("launcher variables");
    let backend = if info.source == "palisade" {
        "tcp"
    } else {
        "mpi"
    };
    assert_eq!(g.backend(), backend);
    assert_eq!((r, w), (info.rank, info.world_size));

    // all_reduce: sum and mean over kinds, a strided view, a scalar.
    let mut t = Tensor::from_slice(&[rf + 1.0, 2.0 * (rf + 1.0)]).to_kind(Kind::Float);
    g.all_reduce(&mut t, ReduceOp::Sum).unwrap();
    let tri = wf * (wf + 1.0) / 2.0;
    assert_values("sum f32", &t, &[tri, 2.0 * tri]);
    let mut t = Tensor::from_slice(&[rf]);
    g.all_reduce(&mut t, ReduceOp::Avg).unwrap();
    assert_values("avg f64", &t, &[(wf - 1.0) / 2.0]);
    let mut t = Tensor::from_slice(&[r as i64, 1]);
    g.all_reduce(&mut t, ReduceOp::Sum).unwrap();
    assert_eq!(t.kind(), Kind::Int64);
    assert_values("sum i64", &t, &[wf * (wf - 1.0) / 2.0, wf]);
    let err = g.all_reduce(&mut t, ReduceOp::Avg).unwrap_err().to_string();
    assert!(
        err.contains("average") && err.contains("all_reduce"),
        "{err}"
    );
    let mut strided =
        (Tensor::arange(6, (Kind::Float, Device::Cpu)).view([2, 3]) * (rf + 1.0)).tr();
    g.all_reduce(&mut strided, ReduceOp::Sum).unwrap();
    assert_eq!(strided.size(), vec![3, 2]);
    assert_values(
        "strided",
        &strided,
        &[0.0, 3.0 * tri, tri, 4.0 * tri, 2.0 * tri, 5.0 * tri],
    );
    let mut scalar = Tensor::from(rf);
    g.all_reduce(&mut scalar, ReduceOp::Sum).unwrap();
    assert_values("scalar", &scalar, &[wf * (wf - 1.0) / 2.0]);

    // all_gather: rank order along dim 0; scalars become a vector.
    let t = Tensor::from_slice(&[10.0 * rf, 10.0 * rf + 1.0]).view([1, 2]);
    let all = g.all_gather(&t).unwrap();
    assert_eq!(all.size(), vec![w as i64, 2]);
    let want: Vec<f64> = (0..w)
        .flat_map(|k| [10.0 * k as f64, 10.0 * k as f64 + 1.0])
        .collect();
    assert_values("all_gather", &all, &want);
    let ranks = g.all_gather(&Tensor::from(r as i64)).unwrap();
    assert_values(
        "all_gather scalar",
        &ranks,
        &(0..w).map(|k| k as f64).collect::<Vec<_>>(),
    );

    // broadcast from the last rank, into a parameter-like leaf that requires grad.
    let mut p = Tensor::full([3], rf, (Kind::Float, Device::Cpu)).set_requires_grad(true);
    g.broadcast(&mut p, w - 1).unwrap();
    assert_values("broadcast", &p, &[wf - 1.0; 3]);
    let err = g.broadcast(&mut p, w).unwrap_err().to_string();
    assert!(err.contains(&format!("rank {w}")), "{err}");

    // reduce_scatter: rank r keeps rows 2r, 2r+1 of the sum.
    let t = Tensor::arange(2 * w as i64, (Kind::Float, Device::Cpu)).view([w as i64, 2]) + rf;
    let mine = g.reduce_scatter(&t, ReduceOp::Sum).unwrap();
    assert_eq!(mine.size(), vec![1, 2]);
    let base = wf * (wf - 1.0) / 2.0;
    assert_values(
        "reduce_scatter",
        &mine,
        &[wf * 2.0 * rf + base, wf * (2.0 * rf + 1.0) + base],
    );
    let mean = g.reduce_scatter(&t, ReduceOp::Avg).unwrap();
    assert_values(
        "reduce_scatter avg",
        &mean,
        &[2.0 * rf + base / wf, 2.0 * rf + 1.0 + base / wf],
    );
    assert!(g
        .reduce_scatter(
            &Tensor::zeros([w as i64 + 1], (Kind::Float, Device::Cpu)),
            ReduceOp::Sum
        )
        .is_err());

    // send/recv in pairs (the world size is even here), then a ring shift with send_recv.
    assert_eq!(w % 2, 0, "pair test needs an even world");
    let msg = Tensor::from_slice(&[r as i64, 7]);
    let mut got = Tensor::zeros([2], (Kind::Int64, Device::Cpu));
    if r % 2 == 0 {
        g.send(&msg, r + 1).unwrap();
        g.recv(&mut got, r + 1).unwrap();
        assert_values("recv from odd", &got, &[rf + 1.0, 7.0]);
    } else {
        g.recv(&mut got, r - 1).unwrap();
        assert_values("recv from even", &got, &[rf - 1.0, 7.0]);
        g.send(&msg, r - 1).unwrap();
    }
    assert!(
        g.send(&msg, r).is_err(),
        "a blocking send to oneself is refused"
    );
    let (next, prev) = ((r + 1) % w, (r + w - 1) % w);
    let block = Tensor::full([4, 3], rf, (Kind::Float, Device::Cpu));
    let mut incoming = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
    g.send_recv(&block, next, &mut incoming, prev).unwrap();
    assert_values("ring shift", &incoming, &[prev as f64; 12]);

    // split: parity groups ordered by descending rank; then a 2-D mesh (data × tensor, tp = 2).
    let sub = g.split(r % 2, w - r).unwrap();
    let members: Vec<usize> = (0..w).rev().filter(|k| k % 2 == r % 2).collect();
    assert_eq!(sub.world_size(), members.len());
    assert_eq!(members[sub.rank()], r);
    let mut t = Tensor::from(rf);
    sub.all_reduce(&mut t, ReduceOp::Sum).unwrap();
    assert_values("sub-group sum", &t, &[members.iter().sum::<usize>() as f64]);
    let tp = g.split(r / 2, r % 2).unwrap();
    let dp = g.split(r % 2, r / 2).unwrap();
    assert_eq!((tp.world_size(), tp.rank()), (2, r % 2));
    assert_eq!((dp.world_size(), dp.rank()), (w / 2, r / 2));
    let peers = dp.all_gather(&Tensor::from(r as i64)).unwrap();
    assert_values(
        "data-parallel peers",
        &peers,
        &(0..w)
            .filter(|k| k % 2 == r % 2)
            .map(|k| k as f64)
            .collect::<Vec<_>>(),
    );
    drop((sub, tp, dp));

    // Helpers built on the collectives.
    let bytes = all_gather_bytes(&*g, &vec![b'x'; r]).unwrap();
    assert_eq!(
        bytes.iter().map(Vec::len).collect::<Vec<_>>(),
        (0..w).collect::<Vec<_>>()
    );
    check_same_config(&*g, "same-hash").unwrap();
    let mut grads = vec![
        Tensor::full([3], rf, (Kind::Float, Device::Cpu)),
        Tensor::full([5], rf, (Kind::Float, Device::Cpu)),
        Tensor::full([2], rf, (Kind::Double, Device::Cpu)),
    ];
    all_reduce_bucketed(&*g, &mut grads, ReduceOp::Avg, 16).unwrap();
    for t in &grads {
        assert_values("bucketed avg", t, &vec![(wf - 1.0) / 2.0; t.numel()]);
    }
    let mut params = vec![
        Tensor::full([2, 2], rf, (Kind::Float, Device::Cpu)).set_requires_grad(true),
        Tensor::full([3], rf + 1.0, (Kind::Float, Device::Cpu)).set_requires_grad(true),
    ];
    broadcast_bucketed(&*g, &mut params, 0, 1 << 20).unwrap();
    assert_values("bucketed broadcast", &params[0], &[0.0; 4]);
    assert_values("bucketed broadcast", &params[1], &[1.0; 3]);
    g.barrier().unwrap();

    // A backend starts once per process: a second group shares it; after the last drops, none
    // starts again.
    let again = start();
    assert_eq!((again.rank(), again.world_size()), (r, w));
    again.barrier().unwrap();
    drop(again);
    drop(g);
    let err = init(Backend::Auto)
        .err()
        .expect("MPI cannot restart")
        .to_string();
    assert!(
        err.contains("finalised") || err.contains("closed it"),
        "{err}"
    );
    println!("rank {r} of {w}: collectives ok");
}

fn config_mismatch() {
    let g = start();
    let (r, w) = (g.rank(), g.world_size());
    let hash = if r % 2 == 1 { "bbbbbbbb" } else { "aaaaaaaa" };
    let err = check_same_config(&*g, hash).unwrap_err().to_string();
    assert!(
        err.contains("rank 0 has config hash aaaaaaaa")
            && err.contains("rank 1 has bbbbbbbb")
            && err.contains("rank 3 has bbbbbbbb")
            && !err.contains("rank 2 has"),
        "{err}"
    );
    println!("rank {r} of {w}: config mismatch refused: {err}");
}

fn timeout() {
    let g = start();
    if g.rank() == 0 {
        g.barrier().unwrap();
        panic!("the barrier returned although rank 1 never arrived");
    }
    // Rank 1 never joins; the watchdog on rank 0 aborts the whole job, this sleep included.
    std::thread::sleep(std::time::Duration::from_secs(600));
}

fn world_mismatch() {
    let info = palisade_sharding::discover().unwrap();
    let err = init(Backend::Auto)
        .err()
        .expect("mismatch refused")
        .to_string();
    assert!(
        err.contains("says rank 0 of 3")
            && err.contains("MPI says rank")
            && err.contains("palisade variables"),
        "{err}"
    );
    let rank: usize = std::env::var("OMPI_COMM_WORLD_RANK")
        .unwrap()
        .parse()
        .unwrap();
    println!(
        "rank {rank} of 2: world mismatch refused ({} variables): {err}",
        info.source
    );
}

fn abort() {
    let g = start();
    if g.rank() == 1 {
        g.abort("disk full");
        panic!("abort returned in a two-rank job");
    }
    g.barrier().unwrap();
    panic!("the barrier returned although rank 1 aborted");
}
