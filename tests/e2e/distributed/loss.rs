//! The distributed sigmoid loss against the single-process one on the gathered batch, and its
//! memory per rank as ranks grow.

use super::ranks;
use palisade_model::sigmoid_loss;
use palisade_sharding::{init, Backend, ProcessGroup, ReduceOp};
use palisade_trainer::parallel::distributed_sigmoid_loss;
use tch::{Device, Kind, Tensor};

fn unit_rows(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)
}

fn leaf(t: &Tensor) -> Tensor {
    t.copy().set_requires_grad(true)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn matches_single_process_on_the_gathered_batch() {
    const NAME: &str = "distributed::loss::matches_single_process_on_the_gathered_batch";
    if ranks::is_worker(NAME) {
        return check_against_single_process();
    }
    for np in [2, 4] {
        let out = ranks::on_ranks(NAME, np, &[]);
        for r in 0..np {
            assert!(
                out.contains(&format!("loss ok on rank {r} of {np}")),
                "{out}"
            );
        }
    }
}

/// On each rank: the whole batch's reference loss and gradients, then this rank's share.
fn check_against_single_process() {
    let g = init(Backend::Auto).expect("MPI group");
    let (r, w) = (g.rank(), g.world_size());
    let (n, d) = (5i64, 8i64);
    let big_n = n * w as i64;
    // Every rank draws the same global batch; texts lie near their images so positives matter.
    tch::manual_seed(11);
    let zi_all = unit_rows(&Tensor::randn([big_n, d], (Kind::Float, Device::Cpu)));
    let zt_all =
        unit_rows(&(&zi_all + Tensor::randn([big_n, d], (Kind::Float, Device::Cpu)) * 0.7));
    let t0 = Tensor::from_slice(&[10f32.ln()]);
    let b0 = Tensor::from_slice(&[-5.0f32]);

    let (zi, zt, t, b) = (leaf(&zi_all), leaf(&zt_all), leaf(&t0), leaf(&b0));
    let want = sigmoid_loss(&zi, &zt, &t, &b);
    want.backward();

    let mine = |x: &Tensor| x.narrow(0, r as i64 * n, n);
    let (zi_l, zt_l, t_l, b_l) = (
        leaf(&mine(&zi_all)),
        leaf(&mine(&zt_all)),
        leaf(&t0),
        leaf(&b0),
    );
    let got = distributed_sigmoid_loss(&*g, &zi_l, &zt_l, &t_l, &b_l).expect("distributed loss");
    got.backward();

    // The mean over ranks of the values and of parameter gradients is the global one; an
    // embedding's gradient is world × its global gradient (see distributed_loss.rs).
    let mean = |x: &Tensor| {
        let mut x = x.detach().copy();
        g.all_reduce(&mut x, ReduceOp::Avg).expect("all_reduce");
        x
    };
    let wf = w as f64;
    let checks = [
        ("loss", max_diff(&mean(&got), &want)),
        (
            "image gradient",
            max_diff(&(zi_l.grad() / wf), &mine(&zi.grad())),
        ),
        (
            "text gradient",
            max_diff(&(zt_l.grad() / wf), &mine(&zt.grad())),
        ),
        ("t' gradient", max_diff(&mean(&t_l.grad()), &t.grad())),
        ("b gradient", max_diff(&mean(&b_l.grad()), &b.grad())),
    ];
    for (what, diff) in checks {
        assert!(diff < 2e-5, "rank {r} of {w}: {what} differs by {diff}");
    }
    // Cross-rank pairs matter: this rank's loss differs from its images against its texts only.
    let local_only = sigmoid_loss(&mine(&zi_all), &mine(&zt_all), &t0, &b0);
    assert!(max_diff(&got, &local_only) > 1e-3);
    println!("loss ok on rank {r} of {w}");
}

#[test]
fn memory_per_rank_stays_flat_as_ranks_grow() {
    const NAME: &str = "distributed::loss::memory_per_rank_stays_flat_as_ranks_grow";
    if ranks::is_worker(NAME) {
        return measure_peak();
    }
    let mut peaks = Vec::new();
    for method in ["ring", "gather"] {
        for np in [2usize, 4] {
            // Large buffers are then mmapped and returned on free, so RSS follows live tensors.
            let env = [
                ("PALISADE_TEST_LOSS", method),
                ("MALLOC_MMAP_THRESHOLD_", "65536"),
            ];
            let out = ranks::on_ranks(NAME, np, &env);
            let per_rank = ranks::reported(&out, "peak_mib");
            assert_eq!(per_rank.len(), np, "{out}");
            let peak = per_rank.iter().map(|(_, v)| *v).fold(0.0, f64::max);
            println!("{method} loss, {np} ranks of 1024 pairs each: peak {peak:.1} MiB per rank");
            peaks.push(peak);
        }
    }
    let [ring2, ring4, gather2, gather4] = peaks[..] else {
        unreachable!()
    };
    // The measurement must see growth where it exists, or the flat result would mean nothing.
    assert!(
        gather4 > 1.4 * gather2,
        "all-gather loss: {gather2} → {gather4} MiB"
    );
    assert!(
        ring4 < 1.2 * ring2 + 4.0,
        "ring loss grew: {ring2} → {ring4} MiB"
    );
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

/// Peak RSS growth of one loss + backward, after a warm-up run (MPI buffers, libtorch pools).
fn measure_peak() {
    let g = init(Backend::Auto).expect("MPI group");
    let (r, w) = (g.rank(), g.world_size());
    let gather = std::env::var("PALISADE_TEST_LOSS").as_deref() == Ok("gather");
    let (n, d) = (1024i64, 256i64);
    tch::manual_seed(r as i64);
    let zi = unit_rows(&Tensor::randn([n, d], (Kind::Float, Device::Cpu)));
    let zt = unit_rows(&Tensor::randn([n, d], (Kind::Float, Device::Cpu)));
    let run = || {
        let (zi, zt) = (leaf(&zi), leaf(&zt));
        let (t, b) = (
            leaf(&Tensor::from_slice(&[1.0f32])),
            leaf(&Tensor::from_slice(&[-5.0f32])),
        );
        let loss = if gather {
            gathered_loss(&*g, &zi, &zt, &t, &b)
        } else {
            distributed_sigmoid_loss(&*g, &zi, &zt, &t, &b).expect("distributed loss")
        };
        loss.backward();
        assert!(zi.grad().defined() && zt.grad().defined());
    };
    run();
    g.barrier().unwrap();
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let base = status_kib("VmRSS:");
    run();
    let peak = (status_kib("VmHWM:") - base) / 1024.0;
    g.barrier().unwrap();
    println!("peak_mib rank {r}: {peak:.2}");
    let _ = w;
}

/// open_clip's way, for comparison: all-gather the texts, then one `[n, N]` logits matrix
/// with autograd keeping it for backward (memory grows with N).
fn gathered_loss(g: &dyn ProcessGroup, zi: &Tensor, zt: &Tensor, t: &Tensor, b: &Tensor) -> Tensor {
    let (r, w) = (g.rank() as i64, g.world_size() as i64);
    let n = zi.size()[0];
    let all = g.all_gather(&zt.detach()).expect("all_gather");
    // Keep the local block in the graph so its gradient flows.
    let parts = [
        all.narrow(0, 0, r * n),
        zt.shallow_clone(),
        all.narrow(0, (r + 1) * n, (w - r - 1) * n),
    ];
    let zt_all = Tensor::cat(&parts, 0);
    let logits = zi.matmul(&zt_all.tr()) * t.exp() + b;
    let labels = Tensor::full([n, w * n], -1.0, (Kind::Float, Device::Cpu));
    let eye = Tensor::eye(n, (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    labels.slice(1, r * n, (r + 1) * n, 1).copy_(&eye);
    -(labels * logits).log_sigmoid().sum(Kind::Float) / n as f64
}
