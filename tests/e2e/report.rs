//! `palisade report`: run folders made here (config, metric log, eval.json with tasks and
//! qualitative examples, tiny PNGs) become pages that headless Chromium (Debian's `chromium`,
//! installed by scripts/setup.sh) renders with every table present and every image decoded.

use crate::common::*;
use palisade_data::loc::NormBox;
use palisade_evaluator::{EvalReport, Example, TaskResult};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Training metrics the hand-made log holds (one chart each).
const TRAIN_KEYS: [&str; 6] = [
    "train/loss",
    "train/lr",
    "train/grad_norm",
    "train/examples_per_sec",
    "train/data_wait_ms",
    "train/skipped_examples",
];
/// Evaluation metrics logged at steps 20 and 40 (one chart each).
const EVAL_KEYS: [&str; 3] = [
    "eval/coco_caption/cider",
    "eval/coco_caption/bleu4",
    "eval/refcoco/acc@0.5",
];

/// The final evaluation of the hand-made runs: a captioning and a RefCOCO task, one example each.
fn eval_report() -> EvalReport {
    let task = |name: &str, kind: &str, headline: &str, metrics: &[(&str, f64)]| TaskResult {
        name: name.into(),
        kind: kind.into(),
        examples: 8,
        skipped: 0,
        headline: headline.into(),
        metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        blind: Default::default(),
    };
    EvalReport {
        step: Some(40),
        examples: 16,
        skipped: 0,
        retrieval: vec![],
        zero_shot: vec![],
        tasks: vec![
            task(
                "coco_caption",
                "caption",
                "cider",
                &[("cider", 1.234), ("bleu4", 0.3)],
            ),
            task("refcoco", "refcoco", "acc@0.5", &[("acc@0.5", 0.625)]),
        ],
        qualitative: vec![
            Example {
                task: "coco_caption".into(),
                id: "img-7".into(),
                prompt: "caption en".into(),
                prediction: "a red circle <b>left</b>".into(),
                references: vec!["a red circle".into(), "red disc on the left".into()],
                score: Some(0.8),
                image: Some("examples/0.png".into()),
                frames: 1,
                predicted_box: None,
                true_box: None,
            },
            Example {
                task: "refcoco".into(),
                id: "sent-3".into(),
                prompt: "detect blue square".into(),
                prediction: "<loc0256><loc0256><loc0768><loc0768> blue square".into(),
                references: vec!["<loc0200><loc0200><loc0700><loc0700> blue square".into()],
                score: Some(0.71),
                image: Some("examples/1.png".into()),
                frames: 1,
                predicted_box: Some(NormBox {
                    y1: 0.25,
                    x1: 0.25,
                    y2: 0.75,
                    x2: 0.75,
                }),
                true_box: Some(NormBox {
                    y1: 0.2,
                    x1: 0.2,
                    y2: 0.7,
                    x2: 0.7,
                }),
            },
        ],
    }
}

/// Writes a finished PaLI run folder named `name` with learning rate `lr`, whose loss falls to
/// `final_loss` over 40 steps.
fn write_run(dir: &Path, name: &str, lr: f64, final_loss: f64) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(run.join("report/examples")).unwrap();
    std::fs::write(
        run.join("config.yaml"),
        format!("name: {name}\nstage: pali\nseed: 0\ntrain:\n  lr: {lr}\n  steps: 40\n  batch_size: 8\n"),
    )
    .unwrap();
    let mut log = String::new();
    for step in (5..=40).step_by(5) {
        let loss = final_loss + (40 - step) as f64 * 0.05;
        log += &format!(
            "{{\"step\":{step},\"split\":\"train\",\"train/loss\":{loss},\"train/lr\":{lr},\
             \"train/grad_norm\":1.5,\"train/examples_per_sec\":120.0,\"train/data_wait_ms\":0.4,\
             \"train/skipped_examples\":0}}\n"
        );
        if step % 20 == 0 {
            log += &format!(
                "{{\"step\":{step},\"split\":\"eval\",\"eval/coco_caption/cider\":{},\
                 \"eval/coco_caption/bleu4\":0.3,\"eval/refcoco/acc@0.5\":0.625}}\n",
                step as f64 / 40.0 * 1.234
            );
        }
    }
    std::fs::write(run.join("metrics.jsonl"), log).unwrap();
    for (i, colour) in [[220, 30, 30], [30, 30, 220]].into_iter().enumerate() {
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            if (8..24).contains(&x) && (8..24).contains(&y) {
                image::Rgb(colour)
            } else {
                image::Rgb([240, 240, 240])
            }
        });
        img.save(run.join(format!("report/examples/{i}.png")))
            .unwrap();
    }
    std::fs::write(
        run.join("report/eval.json"),
        serde_json::to_string_pretty(&eval_report()).unwrap(),
    )
    .unwrap();
    run
}

/// The DOM of `page` after headless Chromium loaded it (scripts run, images decoded).
fn chromium_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .expect("chromium runs (Debian's `chromium` package; scripts/setup.sh installs it)");
    assert!(out.status.success(), "chromium failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Copies `page` with a script that records, once loaded, how many images decoded (natural
/// width > 0) and their natural sizes, and returns `(decoded/total, sizes)` read from the DOM.
/// `extra` is HTML added before the script (to prove a broken image is counted as such).
fn decoded_images(page: &Path, extra: &str) -> (String, Vec<String>) {
    const PROBE: &str = "<script>window.addEventListener('load', () => {\
        const imgs = [...document.images];\
        const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;\
        const d = document.createElement('div'); d.id = 'img-check';\
        d.textContent = ok + '/' + imgs.length + ' ' +\
          imgs.map(i => i.naturalWidth + 'x' + i.naturalHeight).join(',');\
        document.body.appendChild(d); });</script>";
    let html = std::fs::read_to_string(page).unwrap();
    let probe = page.with_file_name("probe.html");
    std::fs::write(
        &probe,
        html.replace("</body>", &format!("{extra}{PROBE}</body>")),
    )
    .unwrap();
    let dom = chromium_dom(&probe);
    let start = dom.find("<div id=\"img-check\">").expect("the probe ran") + 20;
    let end = start + dom[start..].find("</div>").unwrap();
    let (count, sizes) = dom[start..end]
        .split_once(' ')
        .unwrap_or((&dom[start..end], ""));
    (
        count.to_string(),
        sizes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    )
}

#[test]
fn report_page_renders_tables_and_images_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_run(dir.path(), "pali_a", 0.001, 0.5);
    let stdout = palisade_ok(dir.path(), &["report", run.to_str().unwrap()]);
    for f in ["eval.json", "eval.md", "index.html"] {
        let p = run.join("report").join(f);
        assert!(
            stdout.contains(&p.display().to_string()),
            "{f} not printed: {stdout}"
        );
        assert!(p.exists(), "{f}");
    }
    let back: EvalReport =
        serde_json::from_str(&std::fs::read_to_string(run.join("report/eval.json")).unwrap())
            .unwrap();
    assert_eq!(back, eval_report(), "eval.json is re-serialised unchanged");
    let md = std::fs::read_to_string(run.join("report/eval.md")).unwrap();
    assert!(md.starts_with("# pali_a: PaLI evaluation"), "{md}");
    assert!(md.contains("**cider 123.40**"), "{md}");

    let page = run.join("report/index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "the page needs no JavaScript");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the page requests nothing"
    );

    let dom = chromium_dom(&page);
    for id in ["summary", "tasks", "task-metrics", "examples"] {
        assert!(
            dom.contains(&format!("<table id=\"{id}\">")),
            "table {id} missing"
        );
    }
    // Headline values as people read them, and the full metric table.
    assert!(dom.contains("<td>coco_caption cider</td><td class=\"num\">123.40</td>"));
    assert!(dom.contains("<td>refcoco acc@0.5</td><td class=\"num\">62.50%</td>"));
    assert!(dom.contains("<td>coco_caption</td><td>bleu4</td><td class=\"num\">30.00</td>"));
    assert!(
        dom.contains("<td class=\"num\">0.5000</td>"),
        "final train loss"
    );
    // Example text arrives as text, not markup.
    assert!(dom.contains("a red circle &lt;b&gt;left&lt;/b&gt;"));
    assert!(dom.contains("red disc on the left"));
    for key in TRAIN_KEYS.iter().chain(&EVAL_KEYS) {
        assert!(
            dom.contains(&format!("alt=\"{key}\"")),
            "no chart for {key}"
        );
    }

    // Every image decodes: 6 training curves, 3 evaluation curves, 2 thumbnails.
    let (count, sizes) = decoded_images(&page, "");
    assert_eq!(count, "11/11", "{sizes:?}");
    assert_eq!(
        sizes.iter().filter(|s| *s == "400x250").count(),
        9,
        "{sizes:?}"
    );
    assert_eq!(
        sizes.iter().filter(|s| *s == "160x160").count(),
        2,
        "{sizes:?}"
    );
    // The probe does tell a broken image from a good one.
    let (count, _) = decoded_images(&page, "<img src=\"data:image/png;base64,AAAA\">");
    assert_eq!(count, "11/12");
}

#[test]
fn report_compares_a_sweep_in_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(dir.path(), "sweep_lr1", 0.001, 0.75);
    let b = write_run(dir.path(), "sweep_lr2", 0.002, 0.5);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let o = palisade(dir.path(), &["report", a, b]);
    assert!(
        !o.status.success() && text(&o).contains("--out"),
        "{}",
        text(&o)
    );
    let out = dir.path().join("cmp");
    let stdout = palisade_ok(
        dir.path(),
        &["report", a, b, "--out", out.to_str().unwrap()],
    );
    for f in ["comparison.json", "comparison.md", "index.html"] {
        assert!(stdout.contains(f), "{f} not printed: {stdout}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(json["runs"][1]["name"], "sweep_lr2");
    assert_eq!(json["runs"][1]["final_train_loss"], 0.5);
    assert_eq!(json["runs"][0]["metrics"]["eval/refcoco/acc@0.5"], 0.625);
    let keys: Vec<&str> = json["differing_config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["name", "train.lr"]);
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("| train.lr | 0.001 | 0.002 |"), "{md}");

    let dom = chromium_dom(&out.join("index.html"));
    assert!(
        dom.contains("<table id=\"comparison\">") && dom.contains("<table id=\"config-diff\">")
    );
    // The lower final loss is marked best; the equal CIDEr is marked for neither.
    for (name, loss) in [("sweep_lr1", "0.7500"), ("sweep_lr2", "0.5000 ★")] {
        let row = format!("<tr><td>{name}</td>");
        let at = dom
            .find(&row)
            .unwrap_or_else(|| panic!("no row for {name}"));
        let row_html = &dom[at..at + dom[at..].find("</tr>").unwrap()];
        assert!(
            row_html.contains(&format!("<td class=\"num\">{loss}</td>")),
            "{row_html}"
        );
        assert!(
            row_html.contains("<td class=\"num\">123.40</td>"),
            "{row_html}"
        );
    }
    assert!(dom.contains("<td>train.lr</td><td>0.001</td><td>0.002</td>"));
    let (count, _) = decoded_images(&out.join("index.html"), "");
    // Overlays: train/loss and the two headline metrics (cider, acc@0.5).
    assert_eq!(count, "3/3");
}

#[test]
fn report_names_a_bad_log_line_and_keeps_the_old_page() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_run(dir.path(), "broken", 0.001, 0.5);
    let r = run.to_str().unwrap();
    palisade_ok(dir.path(), &["report", r]);
    let page = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    let mut log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let bad_line = log.lines().count() + 1;
    log += "{\"step\": 45, \"train/loss\": \n";
    std::fs::write(run.join("metrics.jsonl"), log).unwrap();
    let o = palisade(dir.path(), &["report", r]);
    let msg = text(&o);
    assert!(!o.status.success(), "{msg}");
    assert!(
        msg.contains(&format!("metrics.jsonl line {bad_line}")),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("report/index.html")).unwrap(),
        page
    );
}
