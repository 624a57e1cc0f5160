//! The HTML page of one run: summary, training curves, evaluations during training, the final
//! evaluation's full tables, qualitative examples and the config.

use super::embed::png_data_uri;
use super::markup::{escape, figure, page, table, Cell};
use super::plot::{self, Chart, Line, PALETTE};
use super::runs::{format_logged, significant, Run, Series};
use super::thumb;
use crate::error::Result;
use crate::report::run_folder::REPORT_DIR;
use crate::report::{format_metric, EvalReport, Example};
use palisade_data::loc::NormBox;

/// The run's page as one self-contained HTML document.
pub fn run_page(run: &Run) -> Result<String> {
    let mut body = format!("<h1>{}</h1>\n", escape(&run.name));
    body += &format!("<p class=\"muted\">{}</p>\n", escape(&byline(run)));
    body += "<h2>Summary</h2>\n";
    body += &summary(run);
    if !run.train.is_empty() {
        body += "<h2>Training curves</h2>\n";
        body += &charts(&run.train, PALETTE[0])?;
    }
    if !run.evals.is_empty() {
        body += "<h2>Evaluations during training</h2>\n";
        body += &charts(&run.evals, PALETTE[1])?;
    }
    match &run.eval {
        Some(e) => body += &final_tables(e),
        None => {
            body += "<p class=\"muted\">No final evaluation (report/eval.json) yet.</p>\n";
        }
    }
    if let Some(e) = run.eval.as_ref().filter(|e| !e.qualitative.is_empty()) {
        body += "<h2>Examples</h2>\n";
        body += "<p class=\"muted\">Boxes: <span style=\"color:#00c800\">■ true</span> \
                 <span style=\"color:#e60000\">■ predicted</span>.</p>\n";
        body += &examples(run, &e.qualitative)?;
    }
    if let Some(cfg) = &run.config_text {
        body += &format!(
            "<h2>Config</h2>\n<details><summary>config.yaml</summary><pre>{}</pre></details>\n",
            escape(cfg)
        );
    }
    Ok(page(&format!("{}: report", run.name), &body))
}

fn byline(run: &Run) -> String {
    let mut parts = vec![format!("folder {}", run.dir.display())];
    if let Some(s) = &run.stage {
        parts.push(format!("stage {s}"));
    }
    if let Some(s) = run.final_step() {
        parts.push(format!("final step {s}"));
    }
    if let Some(e) = &run.eval {
        parts.push(format!(
            "{} held-out examples ({} skipped as unreadable)",
            e.examples, e.skipped
        ));
    }
    parts.join(" · ")
}

/// Headline numbers, each beside what it would be without the image and its ceiling where
/// there is one.
fn summary(run: &Run) -> String {
    let dash = || Cell::text("–");
    let mut rows = Vec::new();
    if let Some(l) = run.final_train_loss() {
        rows.push(vec![
            Cell::text("final train loss"),
            Cell::num(&significant(l)),
            dash(),
            dash(),
        ]);
    }
    match &run.eval {
        Some(e) => {
            for r in &e.retrieval {
                rows.push(vec![
                    Cell::text(&format!("{} R@{}", r.direction.replace('_', " "), r.k)),
                    Cell::num(&pct(r.recall)),
                    Cell::num(&pct(r.chance)),
                    r.ceiling.map_or_else(dash, |c| Cell::num(&pct(c))),
                ]);
            }
            for z in &e.zero_shot {
                rows.push(vec![
                    Cell::text(&format!("zero-shot {}", z.name)),
                    Cell::num(&pct(z.accuracy)),
                    Cell::num(&pct(z.majority)),
                    dash(),
                ]);
            }
            for t in &e.tasks {
                let shown = |m: &std::collections::BTreeMap<String, f64>| {
                    m.get(&t.headline)
                        .map_or_else(dash, |v| Cell::num(&format_metric(&t.headline, *v)))
                };
                rows.push(vec![
                    Cell::text(&format!("{} {}", t.name, t.headline)),
                    shown(&t.metrics),
                    shown(&t.blind),
                    dash(),
                ]);
            }
        }
        None => {
            for (k, s) in &run.evals {
                if let Some(&(_, v)) = s.last() {
                    rows.push(vec![
                        Cell::text(k),
                        Cell::num(&format_logged(k, v)),
                        dash(),
                        dash(),
                    ]);
                }
            }
        }
    }
    if rows.is_empty() {
        return "<p class=\"muted\">No metrics logged yet.</p>\n".into();
    }
    table("summary", &["metric", "value", BLIND, "ceiling"], &rows)
}

/// The column of what a metric would be without seeing the image: chance for retrieval, the
/// majority class for zero-shot, the blind baseline for tasks.
const BLIND: &str = "without the image";

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// One small chart per metric, against step.
fn charts(
    series: &std::collections::BTreeMap<String, Series>,
    color: image::Rgb<u8>,
) -> Result<String> {
    let mut out = String::from("<div class=\"grid\">\n");
    for (key, s) in series {
        let chart = Chart {
            title: key.clone(),
            x_label: "step".into(),
            lines: vec![Line {
                points: s.iter().map(|&(x, y)| (x as f64, y)).collect(),
                color,
            }],
        };
        let (img, _) = plot::render(&chart);
        let caption = s.last().map_or(String::new(), |&(step, v)| {
            format!("{key}: {} at step {step}", format_logged(key, v))
        });
        out += &figure(&png_data_uri(&img)?, key, &caption, "plot");
        out += "\n";
    }
    Ok(out + "</div>\n")
}

/// Retrieval, zero-shot and task tables of the final evaluation.
fn final_tables(e: &EvalReport) -> String {
    let mut out = String::new();
    if !e.retrieval.is_empty() {
        let rows: Vec<Vec<Cell>> = e
            .retrieval
            .iter()
            .map(|r| {
                vec![
                    Cell::text(&r.direction.replace('_', " ")),
                    Cell::text(&format!("R@{}", r.k)),
                    Cell::num(&pct(r.recall)),
                    Cell::num(&pct(r.chance)),
                    r.ceiling
                        .map_or_else(|| Cell::text("–"), |c| Cell::num(&pct(c))),
                ]
            })
            .collect();
        out += "<h2>Retrieval</h2>\n";
        out += &table(
            "retrieval",
            &["direction", "Recall@K", "value", "chance", "ceiling"],
            &rows,
        );
    }
    if !e.zero_shot.is_empty() {
        let rows: Vec<Vec<Cell>> = e
            .zero_shot
            .iter()
            .map(|z| {
                vec![
                    Cell::text(&z.name),
                    Cell::num(&z.classes.to_string()),
                    Cell::num(&z.examples.to_string()),
                    Cell::num(&pct(z.accuracy)),
                    Cell::num(&pct(z.chance)),
                    Cell::num(&pct(z.majority)),
                ]
            })
            .collect();
        out += "<h2>Zero-shot classification</h2>\n";
        out += &table(
            "zero-shot",
            &[
                "task",
                "classes",
                "examples",
                "accuracy",
                "chance (1/classes)",
                "majority class",
            ],
            &rows,
        );
    }
    if !e.tasks.is_empty() {
        let rows: Vec<Vec<Cell>> = e
            .tasks
            .iter()
            .map(|t| {
                let shown = |m: &std::collections::BTreeMap<String, f64>| {
                    Cell::num(
                        &m.get(&t.headline)
                            .map_or("–".into(), |v| format_metric(&t.headline, *v)),
                    )
                };
                vec![
                    Cell::text(&t.name),
                    Cell::text(&t.kind),
                    Cell::num(&t.examples.to_string()),
                    Cell::num(&t.skipped.to_string()),
                    Cell::text(&t.headline),
                    shown(&t.metrics),
                    shown(&t.blind),
                ]
            })
            .collect();
        out += "<h2>Tasks</h2>\n";
        out += &table(
            "tasks",
            &[
                "task", "kind", "examples", "skipped", "headline", "value", BLIND,
            ],
            &rows,
        );
        let rows: Vec<Vec<Cell>> = e
            .tasks
            .iter()
            .flat_map(|t| {
                t.metrics.iter().map(|(k, v)| {
                    let name = if *k == t.headline {
                        Cell::html(format!("<b>{}</b>", escape(k)))
                    } else {
                        Cell::text(k)
                    };
                    let blind = t.blind.get(k).map_or("–".into(), |b| format_metric(k, *b));
                    vec![
                        Cell::text(&t.name),
                        name,
                        Cell::num(&format_metric(k, *v)),
                        Cell::num(&blind),
                    ]
                })
            })
            .collect();
        out += "<h3>All task metrics</h3>\n";
        out += &table("task-metrics", &["task", "metric", "value", BLIND], &rows);
    }
    out
}

/// The qualitative examples: thumbnail beside prompt, prediction, references and score.
fn examples(run: &Run, examples: &[Example]) -> Result<String> {
    let mut rows = Vec::new();
    for ex in examples {
        let mut what = format!(
            "<b>{}</b><br><span class=\"muted\">{}</span>",
            escape(&ex.task),
            escape(&ex.id)
        );
        if ex.frames > 1 {
            what += &format!(
                "<br><span class=\"muted\">first of {} frames</span>",
                ex.frames
            );
        }
        let mut prediction = escape(&ex.prediction);
        if let Some(b) = &ex.predicted_box {
            prediction += &format!("<br><span class=\"muted\">red box {}</span>", box_text(b));
        }
        let mut refs: Vec<String> = ex.references.iter().map(|r| escape(r)).collect();
        if let Some(b) = &ex.true_box {
            refs.push(format!(
                "<span class=\"muted\">green box {}</span>",
                box_text(b)
            ));
        }
        rows.push(vec![
            Cell::html(thumbnail_cell(run, ex)?),
            Cell::html(what),
            Cell::text(&ex.prompt),
            Cell::html(prediction),
            Cell::html(refs.join("<br>")),
            Cell::num(&ex.score.map_or("–".into(), |s| format!("{s:.3}"))),
        ]);
    }
    Ok(table(
        "examples",
        &[
            "image",
            "task / id",
            "prompt",
            "prediction",
            "references",
            "score",
        ],
        &rows,
    ))
}

/// The example's image with its boxes, or a note when it has none or the file is unreadable
/// (a report is still worth having with one picture missing).
fn thumbnail_cell(run: &Run, ex: &Example) -> Result<String> {
    let Some(rel) = &ex.image else {
        return Ok("<span class=\"muted\">no image</span>".into());
    };
    let path = run.dir.join(REPORT_DIR).join(rel);
    match image::open(&path) {
        Ok(img) => {
            let t = thumb::example_thumbnail(&img, ex.true_box.as_ref(), ex.predicted_box.as_ref());
            let (w, h) = t.dimensions();
            Ok(format!(
                "<img class=\"thumb\" width=\"{w}\" height=\"{h}\" src=\"{}\" alt=\"{}\">",
                png_data_uri(&t)?,
                escape(&format!("{} {}", ex.task, ex.id))
            ))
        }
        Err(e) => {
            tracing::warn!("{}: {e}", path.display());
            Ok(format!(
                "<span class=\"muted\">unreadable image {}: {}</span>",
                escape(rel),
                escape(&e.to_string())
            ))
        }
    }
}

fn box_text(b: &NormBox) -> String {
    format!(
        "y1 {:.3} x1 {:.3} y2 {:.3} x2 {:.3}",
        b.y1, b.x1, b.y2, b.x2
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TaskResult;

    #[test]
    fn page_escapes_text_and_embeds_example_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("report/examples")).unwrap();
        image::RgbImage::from_pixel(32, 32, image::Rgb([9, 9, 9]))
            .save(dir.path().join("report/examples/0.png"))
            .unwrap();
        let ex = |image: Option<&str>| Example {
            task: "refcoco".into(),
            id: "<id>".into(),
            prompt: "detect <script>alert(1)</script>".into(),
            prediction: "a & b".into(),
            references: vec!["\"quoted\"".into()],
            score: Some(0.5),
            image: image.map(String::from),
            frames: 1,
            predicted_box: Some(NormBox {
                y1: 0.1,
                x1: 0.1,
                y2: 0.5,
                x2: 0.5,
            }),
            true_box: Some(NormBox {
                y1: 0.2,
                x1: 0.2,
                y2: 0.6,
                x2: 0.6,
            }),
        };
        let run = Run {
            dir: dir.path().to_path_buf(),
            name: "r<1>".into(),
            stage: Some("pali".into()),
            config_text: Some("name: r<1>\n".into()),
            config: Default::default(),
            train: [("train/loss".to_string(), vec![(1, 2.0), (2, 1.0)])].into(),
            evals: Default::default(),
            eval: Some(EvalReport {
                step: Some(2),
                examples: 4,
                skipped: 0,
                retrieval: vec![],
                zero_shot: vec![],
                tasks: vec![TaskResult {
                    name: "refcoco".into(),
                    kind: "refcoco".into(),
                    examples: 4,
                    skipped: 0,
                    headline: "acc@0.5".into(),
                    metrics: [("acc@0.5".to_string(), 0.25)].into(),
                    blind: [("acc@0.5".to_string(), 0.125)].into(),
                }],
                qualitative: vec![ex(Some("examples/0.png")), ex(Some("examples/missing.png"))],
            }),
        };
        let html = run_page(&run).unwrap();
        assert!(
            !html.contains("<script>")
                && html.contains("detect &lt;script&gt;alert(1)&lt;/script&gt;")
        );
        assert!(html.contains("<h1>r&lt;1&gt;</h1>") && html.contains("a &amp; b"));
        assert!(html.contains("&quot;quoted&quot;"));
        assert!(
            html.contains("<td class=\"num\">25.00%</td>"),
            "refcoco headline"
        );
        assert!(
            html.contains("<th>without the image</th>")
                && html.contains("<td class=\"num\">12.50%</td>"),
            "the blind baseline beside it"
        );
        // One thumbnail (32 px upscaled ×5), one note for the missing file, one training curve.
        assert_eq!(
            html.matches(
                "<img class=\"thumb\" width=\"160\" height=\"160\" src=\"data:image/png;base64,"
            )
            .count(),
            1
        );
        assert!(html.contains("unreadable image examples/missing.png"));
        assert_eq!(html.matches("<img class=\"plot\"").count(), 1);
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external requests"
        );
    }
}
