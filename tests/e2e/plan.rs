//! `palisade plan`: its totals against the peak memory a training step really takes here, and
//! what it refuses.

use crate::common::*;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn the_plan_agrees_with_measured_peak_memory_within_20_percent() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = repo().join("configs/bench/siglip_36m.yaml");
    let cfg = cfg.to_str().unwrap();
    for remat in ["none", "blocks"] {
        let sets = [
            "--set",
            "train.batch_size=8",
            "--set",
            &format!("train.remat={remat}"),
        ];
        let mut bench = vec!["bench", "train-step", cfg, "--steps", "1", "--warmup", "1"];
        bench.extend(sets);
        let b = json(&palisade_ok(dir.path(), &bench));
        let measured = b["peak_rss_mib"].as_f64().unwrap();
        let mut plan = vec!["plan", cfg, "--json"];
        plan.extend(sets);
        let p = json(&palisade_ok(dir.path(), &plan));
        let planned = p[0]["total_bytes"].as_f64().unwrap() / (1 << 20) as f64;
        let err = (planned - measured).abs() / measured;
        assert!(
            err <= 0.2,
            "remat {remat}: planned {planned:.0} MiB, measured {measured:.0} MiB"
        );
        assert_eq!(
            p[0]["params"], b["params"],
            "the built model's count: {p} {b}"
        );
    }
}

#[test]
fn pali3_is_planned_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = repo().join("configs/scale/pali3_1064.yaml");
    let out = palisade_ok(
        dir.path(),
        &["plan", cfg.to_str().unwrap(), "--world", "256"],
    );
    assert!(out.contains("5.602 B parameters"), "{out}");
    assert!(
        out.contains("5776 tokens") && out.contains("fits in 80 GiB"),
        "{out}"
    );
    // On 64 GPUs the config's `optimizer` sharding is over 80 GiB; `full` divides the blocks'
    // parameters and gradients by the ranks, plus one gathered segment, and fits.
    let plan = |shard: &str| {
        let set = format!("parallel.shard={shard}");
        let args = [
            "plan",
            cfg.to_str().unwrap(),
            "--world",
            "64",
            "--json",
            "--set",
            &set,
        ];
        json(&palisade_ok(dir.path(), &args))[0].clone()
    };
    let (opt, full) = (plan("optimizer"), plan("full"));
    let gib =
        |p: &serde_json::Value, k: &str| p["bytes"][k].as_f64().unwrap() / (1u64 << 30) as f64;
    assert!(gib(&opt, "parameters") > 10.0, "{opt}");
    assert!(gib(&full, "parameters") < 2.5, "{full}");
    assert!(gib(&full, "gathered segment") > 0.1, "{full}");
    assert!(
        full["total_bytes"].as_f64().unwrap() < 80.0 * (1u64 << 30) as f64,
        "{full}"
    );
    assert!(
        opt["total_bytes"].as_f64().unwrap() > 80.0 * (1u64 << 30) as f64,
        "{opt}"
    );
}

#[test]
fn plans_that_cannot_run_or_do_not_fit_are_refused_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = repo().join("configs/bench/siglip_36m.yaml");
    let cfg = cfg.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--world", "4", "--tp", "3"],
            "--tp 3 does not divide --world 4",
        ),
        (
            vec!["--world", "4", "--tp", "4"],
            "--tp 4 does not divide model.vision.num_attention_heads (6)",
        ),
        (
            vec!["--set", "train.batch_size=32", "--require-fit", "0.5"],
            "does not fit in 0.5 GiB: over by",
        ),
    ] {
        let mut a = vec!["plan", cfg];
        a.extend(&args);
        let out = palisade(dir.path(), &a);
        let t = text(&out);
        assert!(!out.status.success() && t.contains(want), "{args:?}: {t}");
    }
}
