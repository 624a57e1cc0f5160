//! Cross-checks the metrics against the reference implementations on many generated inputs:
//! pycocoevalcap (BLEU, ROUGE-L, CIDEr-D), the official VQA evaluation code and the `anls`
//! package, run as the Python oracles in `tests/oracles` with the interpreter in
//! `$PALISADE_PYTHON` (set by `scripts/setup.sh`'s env.sh; without it these tests fail).
//!
//! Inputs come from a seeded generator, so every run checks the same cases. Run with
//! `--nocapture` to see the number of cases and the largest differences.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use palisade_metrics::anls::anls_question;
use palisade_metrics::bleu::bleu;
use palisade_metrics::captions::{tokenize_for_coco, ImageCaptions};
use palisade_metrics::cider::cider;
use palisade_metrics::rouge::rouge_l;
use palisade_metrics::vqa::{vqa_accuracy, VqaBreakdown, VqaPrediction, VqaQuestion};
use serde_json::{json, Value};

/// Caption scores may differ from pycocoevalcap by floating-point rounding only.
const TOLERANCE: f64 = 1e-9;

/// SplitMix64: a small seeded generator, so the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `tests/oracles/SCRIPT ARGS` with `$PALISADE_PYTHON` and parses its JSON output.
fn oracle(script: &str, args: &[&Path]) -> Value {
    let python = std::env::var("PALISADE_PYTHON").expect(
        "PALISADE_PYTHON must name the oracle interpreter (source ~/.cache/palisade/env.sh)",
    );
    let out = Command::new(python)
        .arg(repo().join("tests/oracles").join(script))
        .args(args)
        .output()
        .expect("the oracle interpreter runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle prints JSON")
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(v).expect("serialize")).expect("write input");
    path
}

/// A number the oracle printed as its repr string (serde_json's float parsing may be off by
/// one unit in the last place; Rust's `str::parse` is exact).
fn num(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(num)
        .collect()
}

/// Largest absolute difference seen so far, per metric, with the case where it occurred.
#[derive(Default)]
struct MaxDiff(BTreeMap<&'static str, f64>);

impl MaxDiff {
    fn check(&mut self, metric: &'static str, case: &str, ours: f64, reference: f64) {
        let d = (ours - reference).abs();
        assert!(
            d <= TOLERANCE,
            "{metric} differs in {case}: ours {ours}, reference {reference}"
        );
        let m = self.0.entry(metric).or_insert(0.0);
        *m = m.max(d);
    }
}

// ---------------------------------------------------------------------------------------------
// Captions.

const WORDS: &[&str] = &[
    "a",
    "a",
    "the",
    "man",
    "woman",
    "dog",
    "dog",
    "riding",
    "on",
    "of",
    "with",
    "red",
    "two",
    "three",
    "2",
    "10",
    "'s",
    "n't",
    "is",
    "are",
    "street",
    "caf\u{E9}",
    "\u{65E5}\u{672C}",
    "-lrb-",
    "-rrb-",
    "t-shirt",
    "mr.",
    "3.5",
    "1,000",
    "in",
    "sitting",
    "table",
    "a",
    "of",
];

/// A tokenized caption: tokens joined by single spaces, sometimes with the odd spacing that
/// tells `split()` (BLEU, CIDEr) and `split(" ")` (ROUGE-L) apart.
fn tokenized_caption(rng: &mut Rng, base: Option<&str>) -> String {
    let n = rng.below(14);
    let mut toks: Vec<&str> = match base {
        // Near-copies of a reference share many n-grams.
        Some(b) if rng.chance(0.6) => b.split(' ').filter(|_| rng.chance(0.8)).collect(),
        _ => (0..n).map(|_| rng.pick(WORDS)).collect(),
    };
    if rng.chance(0.1) && !toks.is_empty() {
        let w = toks[0];
        toks.extend([w, w, w]); // repeats exercise count clipping
    }
    let sep = if rng.chance(0.1) {
        rng.pick(&["  ", "\t", "\u{A0}", " \u{1C}"])
    } else {
        " "
    };
    let mut s = toks.join(sep);
    if rng.chance(0.05) {
        s = format!(" {s} ");
    }
    s
}

/// Raw captions as people or models write them, for the tokenizer path.
fn raw_caption(rng: &mut Rng) -> String {
    const RAW: &[&str] = &[
        "A",
        "man",
        "Woman",
        "dog's",
        "isn't",
        "riding",
        "a",
        "(red)",
        "\"quoted\"",
        "bike,",
        "street.",
        "U.S.",
        "etc.",
        "two",
        "3-year-old",
        "t-shirt",
        "can't",
        "caf\u{E9}",
        "...",
        "it's",
        "Mr.",
        "--",
        ";",
        "!",
        "?",
        "\u{2014}",
        "\u{201C}hi\u{201D}",
        "1/2",
        "$5",
        "on",
        "the",
        "of",
        "\u{1F600}",
    ];
    let n = rng.below(12);
    (0..n).map(|_| rng.pick(RAW)).collect::<Vec<_>>().join(" ")
}

/// One evaluation set: `images` images with 1–6 references each.
fn caption_dataset(rng: &mut Rng, images: usize, raw: bool) -> Vec<ImageCaptions> {
    (0..images)
        .map(|i| {
            let n_refs = 1 + rng.below(6);
            let references: Vec<String> = (0..n_refs)
                .map(|_| {
                    if raw {
                        raw_caption(rng)
                    } else {
                        tokenized_caption(rng, None)
                    }
                })
                .collect();
            let candidate = if raw {
                raw_caption(rng)
            } else if rng.chance(0.05) {
                String::new()
            } else if rng.chance(0.1) {
                references[0].clone()
            } else {
                let base = references[rng.below(references.len())].clone();
                tokenized_caption(rng, Some(&base))
            };
            ImageCaptions {
                // Zero-padded: serde_json sorts object keys, pycocoevalcap keeps their order.
                image_id: format!("img{i:05}"),
                candidate,
                references,
            }
        })
        .collect()
}

fn coco_input(datasets: &[Vec<ImageCaptions>]) -> Value {
    let sets: Vec<Value> = datasets
        .iter()
        .map(|d| {
            let gts: serde_json::Map<String, Value> = d
                .iter()
                .map(|im| (im.image_id.clone(), json!(im.references)))
                .collect();
            let res: serde_json::Map<String, Value> = d
                .iter()
                .map(|im| (im.image_id.clone(), json!([im.candidate])))
                .collect();
            json!({"gts": gts, "res": res})
        })
        .collect();
    json!({ "datasets": sets })
}

/// Compares our BLEU, ROUGE-L and CIDEr-D of `d` with pycocoevalcap's result `r`.
fn check_caption_scores(d: &[ImageCaptions], r: &Value, case: &str, diffs: &mut MaxDiff) {
    let b = bleu(d).expect("BLEU");
    let ref_bleu = nums(&r["bleu"]);
    for k in 0..4 {
        diffs.check("BLEU corpus", case, b.corpus[k], ref_bleu[k]);
        let per = nums(&r["bleu_per_image"][k]);
        assert_eq!(per.len(), d.len(), "{case}");
        for (i, &x) in per.iter().enumerate() {
            diffs.check("BLEU per image", case, b.per_image[i][k], x);
        }
    }
    let rg = rouge_l(d).expect("ROUGE-L");
    diffs.check("ROUGE-L", case, rg.score, num(&r["rouge"]));
    for (ours, x) in rg.per_image.iter().zip(nums(&r["rouge_per_image"])) {
        diffs.check("ROUGE-L per image", case, *ours, x);
    }
    let c = cider(d).expect("CIDEr");
    diffs.check("CIDEr-D", case, c.score, num(&r["cider"]));
    for (ours, x) in c.per_image.iter().zip(nums(&r["cider_per_image"])) {
        diffs.check("CIDEr-D per image", case, *ours, x);
    }
}

#[test]
fn caption_metrics_match_pycocoevalcap() {
    let mut rng = Rng(2024);
    // Sizes include one image (CIDEr's idf is then 0) and more than 128 (NumPy's pairwise
    // summation recurses); the last sets come from raw captions through our tokenizer.
    let sizes = [1, 2, 3, 5, 8, 13, 20, 40, 60, 90, 150, 300];
    let mut datasets: Vec<Vec<ImageCaptions>> = sizes
        .iter()
        .map(|&n| caption_dataset(&mut rng, n, false))
        .collect();
    for &n in &[4, 30, 200] {
        datasets.push(tokenize_for_coco(&caption_dataset(&mut rng, n, true)));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let input = write_json(dir.path(), "captions.json", &coco_input(&datasets));
    let results = oracle("coco_caption_scores.py", &[&input]);
    let results = results.as_array().expect("one result per dataset");
    assert_eq!(results.len(), datasets.len());

    let mut diffs = MaxDiff::default();
    for (k, (d, r)) in datasets.iter().zip(results).enumerate() {
        check_caption_scores(
            d,
            r,
            &format!("dataset {k} ({} images)", d.len()),
            &mut diffs,
        );
    }
    let images: usize = datasets.iter().map(Vec::len).sum();
    println!(
        "caption metrics: {} datasets, {images} images; max |ours - pycocoevalcap|: {:?}",
        datasets.len(),
        diffs.0
    );
    // The generator must reach the interesting regimes, or the comparison proves little.
    let all: Vec<&ImageCaptions> = datasets.iter().flatten().collect();
    assert!(all.iter().any(|im| im.candidate.is_empty()));
    assert!(all.iter().any(|im| im.candidate.contains("  ")));
    assert!(all.iter().any(|im| im.references.contains(&im.candidate)));
}

/// Pycocoevalcap's own tokenizer (Stanford CoreNLP 3.4.1 in Java) against ours, end to end.
/// Needs `java` besides the oracle environment, so it only runs when asked for:
/// `cargo test -p palisade-evaluator --test reference_metrics -- --ignored`.
#[test]
#[ignore = "needs java for pycocoevalcap's PTBTokenizer"]
fn tokenizer_and_scores_match_pycocoevalcap_with_java() {
    let mut rng = Rng(7);
    let datasets: Vec<Vec<ImageCaptions>> = [3, 25, 120]
        .iter()
        .map(|&n| caption_dataset(&mut rng, n, true))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = write_json(dir.path(), "raw.json", &coco_input(&datasets));
    let results = oracle("coco_caption_scores.py", &[Path::new("--tokenize"), &input]);
    let results = results.as_array().expect("one result per dataset");
    let mut diffs = MaxDiff::default();
    let mut captions = 0;
    for (k, (raw, r)) in datasets.iter().zip(results).enumerate() {
        let ours = tokenize_for_coco(raw);
        for im in &ours {
            let want_refs: Vec<&str> = r["gts"][&im.image_id]
                .as_array()
                .expect("tokenized references")
                .iter()
                .map(|v| v.as_str().unwrap_or_default())
                .collect();
            assert_eq!(im.references, want_refs, "references of {}", im.image_id);
            assert_eq!(
                im.candidate, r["res"][&im.image_id][0],
                "candidate of {}",
                im.image_id
            );
            captions += 1 + im.references.len();
        }
        check_caption_scores(&ours, r, &format!("raw dataset {k}"), &mut diffs);
    }
    println!(
        "tokenizer: {captions} captions identical; max diffs {:?}",
        diffs.0
    );
}

// ---------------------------------------------------------------------------------------------
// VQA.

/// Answer strings that exercise the official processing: punctuation, number words, articles,
/// contractions, case, commas in numbers, Unicode digits, stray whitespace.
const ANSWERS: &[&str] = &[
    "yes",
    "yes",
    "no",
    "no",
    "Yes",
    "yes.",
    "yes!",
    "no ",
    "2",
    "two",
    "Two",
    "none",
    "0",
    "zero",
    "10",
    "ten",
    "1,000",
    "1000",
    "3.5",
    "red",
    "a dog",
    "the dog",
    "dog",
    "dogs",
    "dont",
    "don't",
    "do not",
    "t-shirt",
    "t shirt",
    "hot dog!",
    "left.",
    "mr. smith",
    "black and white",
    "black & white",
    "black/white",
    "caf\u{E9}",
    "\u{661},\u{662}",
    "it's",
    "its",
    "(a) cat",
    "cat?",
    "yes, it is",
    "on the left",
    "n/a",
    "a",
    "the",
    "...",
    "e.g. this",
    "100%",
    "well-done",
    "\"quoted\"",
];

fn vqa_answer(rng: &mut Rng) -> String {
    let a = rng.pick(ANSWERS);
    if rng.chance(0.1) {
        format!("\t{a}\n")
    } else if rng.chance(0.05) {
        a.to_uppercase()
    } else {
        a.to_string()
    }
}

fn vqa_case(rng: &mut Rng, n: usize) -> (Vec<VqaQuestion>, Vec<VqaPrediction>) {
    const QTYPES: &[&str] = &[
        "what color is the",
        "is the",
        "how many",
        "what is",
        "none of the above",
    ];
    const ATYPES: &[&str] = &["yes/no", "number", "other"];
    let mut questions = Vec::new();
    let mut predictions = Vec::new();
    for i in 0..n {
        let question_id = 1000 + 7 * i as i64;
        let answers: Vec<String> = if rng.chance(0.2) {
            // All ten identical: the official code then skips processing the ground truth.
            vec![rng.pick(ANSWERS).to_string(); 10]
        } else {
            let pool: Vec<&str> = (0..1 + rng.below(4)).map(|_| rng.pick(ANSWERS)).collect();
            (0..10).map(|_| rng.pick(&pool).to_string()).collect()
        };
        let answer = if rng.chance(0.5) {
            answers[rng.below(10)].clone()
        } else if rng.chance(0.05) {
            String::new()
        } else {
            vqa_answer(rng)
        };
        questions.push(VqaQuestion {
            question_id,
            question_type: rng.pick(QTYPES).to_string(),
            answer_type: rng.pick(ATYPES).to_string(),
            answers,
        });
        predictions.push(VqaPrediction {
            question_id,
            answer,
        });
    }
    (questions, predictions)
}

/// Compares one breakdown with the official `{"accuracy": ..., "evalQA": ...}`.
fn check_vqa(ours: &VqaBreakdown, official: &Value, what: &str, max_diff: &mut f64) {
    let mut check = |name: &str, a: f64, b: &Value| {
        let b = num(b);
        let d = (a - b).abs();
        // Rounded values must be identical; unrounded ones identical up to rounding.
        let tol = if what == "reported" { 0.0 } else { 1e-12 };
        assert!(d <= tol, "{what} {name}: ours {a}, official {b}");
        *max_diff = max_diff.max(d);
    };
    let acc = &official["accuracy"];
    check("overall", ours.overall, &acc["overall"]);
    let qt = acc["perQuestionType"].as_object().expect("perQuestionType");
    assert_eq!(
        qt.len(),
        ours.per_question_type.len(),
        "{what} question types"
    );
    for (k, v) in &ours.per_question_type {
        check(k, *v, &qt[k]);
    }
    let at = acc["perAnswerType"].as_object().expect("perAnswerType");
    assert_eq!(at.len(), ours.per_answer_type.len(), "{what} answer types");
    for (k, v) in &ours.per_answer_type {
        check(k, *v, &at[k]);
    }
    let qa = official["evalQA"].as_object().expect("evalQA");
    assert_eq!(qa.len(), ours.per_question.len());
    for (id, v) in &ours.per_question {
        check(&format!("question {id}"), *v, &qa[&id.to_string()]);
    }
}

#[test]
fn vqa_accuracy_matches_official_vqa_eval() {
    let mut rng = Rng(99);
    let (questions, predictions) = vqa_case(&mut rng, 3000);
    let annotations: Vec<Value> = questions
        .iter()
        .map(|q| {
            let answers: Vec<Value> = q
                .answers
                .iter()
                .enumerate()
                .map(|(k, a)| json!({"answer": a, "answer_confidence": "yes", "answer_id": k + 1}))
                .collect();
            json!({
                "question_id": q.question_id, "image_id": q.question_id / 7,
                "question_type": q.question_type, "answer_type": q.answer_type,
                "answers": answers, "multiple_choice_answer": q.answers[0],
            })
        })
        .collect();
    let qs: Vec<Value> = questions
        .iter()
        .map(|q| json!({"question_id": q.question_id, "image_id": q.question_id / 7, "question": "?"}))
        .collect();
    let res: Vec<Value> = predictions
        .iter()
        .map(|p| json!({"question_id": p.question_id, "answer": p.answer}))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let ann = write_json(
        dir.path(),
        "ann.json",
        &json!({ "annotations": annotations }),
    );
    let qf = write_json(dir.path(), "questions.json", &json!({ "questions": qs }));
    let rf = write_json(dir.path(), "results.json", &json!(res));
    let official = oracle("vqa_official.py", &[&ann, &qf, &rf]);

    let ours = vqa_accuracy(&questions, &predictions).expect("VQA accuracy");
    let mut max_rounded = 0.0f64;
    let mut max_exact = 0.0f64;
    check_vqa(
        &ours.reported,
        &official["reported"],
        "reported",
        &mut max_rounded,
    );
    check_vqa(&ours.exact, &official["exact"], "exact", &mut max_exact);
    println!(
        "VQA: {} questions; overall {} (official {}); max diff rounded {max_rounded}, unrounded {max_exact}",
        questions.len(),
        ours.reported.overall,
        official["reported"]["accuracy"]["overall"]
    );
    // Partial credit, full credit and misses all occur.
    let per_q: Vec<f64> = ours.exact.per_question.values().copied().collect();
    assert!(per_q.iter().any(|&a| a > 0.0 && a < 100.0));
    assert!(per_q.contains(&100.0) && per_q.contains(&0.0));
}

// ---------------------------------------------------------------------------------------------
// ANLS.

#[test]
fn anls_matches_reference_package() {
    const PARTS: &[&str] = &[
        "Dear",
        "dr.",
        "Lobo",
        "12/15/88",
        "12/15/89",
        "Denver",
        "Broncos",
        "stra\u{DF}e",
        "STRASSE",
        "caf\u{E9}",
        "cafe",
        "a",
        "ab",
        "abc",
        "x",
        "",
        "  ",
        "\t",
        "\u{130}",
    ];
    let mut rng = Rng(5);
    let phrase = |rng: &mut Rng| -> String {
        let n = rng.below(4);
        let words: Vec<&str> = (0..n).map(|_| rng.pick(PARTS)).collect();
        words.join(if rng.chance(0.2) { "  " } else { " " })
    };
    let examples: Vec<(String, Vec<String>)> = (0..2000)
        .map(|_| {
            let answers: Vec<String> = (0..1 + rng.below(3)).map(|_| phrase(&mut rng)).collect();
            let pred = if rng.chance(0.3) {
                answers[0].to_uppercase()
            } else {
                phrase(&mut rng)
            };
            (pred, answers)
        })
        .collect();
    let input: Vec<Value> = examples
        .iter()
        .map(|(p, a)| json!({"prediction": p, "answers": a}))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_json(dir.path(), "anls.json", &json!(input));
    let reference = nums(&oracle("anls_reference.py", &[&path]));
    assert_eq!(reference.len(), examples.len());
    let mut max = 0.0f64;
    let mut partial = 0;
    for ((pred, answers), want) in examples.iter().zip(&reference) {
        let got = anls_question(pred, answers);
        let d = (got - want).abs();
        assert!(
            d <= 1e-12,
            "ANLS of {pred:?} vs {answers:?}: ours {got}, reference {want}"
        );
        max = max.max(d);
        partial += usize::from(got > 0.0 && got < 1.0);
    }
    println!(
        "ANLS: {} questions, {partial} partial scores; max diff {max}",
        examples.len()
    );
    assert!(partial > 10);
}
