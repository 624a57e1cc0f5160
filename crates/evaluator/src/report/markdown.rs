//! An evaluation report as Markdown (`eval.md`, and what `palisade train` prints).

use super::EvalReport;

impl EvalReport {
    /// The report as Markdown.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut md = format!("# {title}\n\n");
        if let Some(s) = self.step {
            md += &format!("Step {s}; ");
        }
        md += &format!(
            "{} held-out examples ({} skipped as unreadable).\n\n",
            self.examples, self.skipped
        );
        if !self.retrieval.is_empty() {
            md += "## Retrieval\n\n| direction | Recall@K | value | chance | ceiling |\n|---|---|---|---|---|\n";
        }
        for r in &self.retrieval {
            md += &format!(
                "| {} | R@{} | {:.2}% | {:.2}% | {} |\n",
                r.direction.replace('_', " "),
                r.k,
                100.0 * r.recall,
                100.0 * r.chance,
                r.ceiling
                    .map_or("–".into(), |c| format!("{:.2}%", 100.0 * c))
            );
        }
        if !self.zero_shot.is_empty() {
            md += "\n## Zero-shot classification\n\n| task | classes | accuracy | chance (1/classes) | majority class |\n|---|---|---|---|---|\n";
            for z in &self.zero_shot {
                md += &format!(
                    "| {} | {} | {:.2}% | {:.2}% | {:.2}% |\n",
                    z.name,
                    z.classes,
                    100.0 * z.accuracy,
                    100.0 * z.chance,
                    100.0 * z.majority
                );
            }
        }
        if !self.tasks.is_empty() {
            md += "\n## Tasks\n\n| task | kind | examples | skipped | headline | without the image | metrics |\n|---|---|---|---|---|---|---|\n";
            for t in &self.tasks {
                let all: Vec<String> = t
                    .metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {}", format_metric(k, *v)))
                    .collect();
                let headline = |m: &std::collections::BTreeMap<String, f64>| {
                    m.get(&t.headline)
                        .map_or("–".into(), |v| format_metric(&t.headline, *v))
                };
                md += &format!(
                    "| {} | {} | {} | {} | **{} {}** | {} | {} |\n",
                    t.name,
                    t.kind,
                    t.examples,
                    t.skipped,
                    t.headline,
                    headline(&t.metrics),
                    headline(&t.blind),
                    all.join(", ")
                );
            }
        }
        if !self.qualitative.is_empty() {
            md += "\n## Examples\n\n| task | id | prompt | prediction | references | score |\n|---|---|---|---|---|---|\n";
            for e in &self.qualitative {
                md += &format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    e.task,
                    md_cell(&e.id),
                    md_cell(&e.prompt),
                    md_cell(&e.prediction),
                    md_cell(&e.references.join(" · ")),
                    e.score.map_or("–".into(), |s| format!("{s:.3}"))
                );
            }
        }
        md
    }
}

/// A metric for people: caption scores ×100 (as papers print CIDEr), fractions (accuracies,
/// rates, IoU) as percentages, anything else (losses) as is.
pub fn format_metric(name: &str, v: f64) -> String {
    let base = name.split('/').next().unwrap_or(name);
    match base {
        "cider" | "bleu1" | "bleu2" | "bleu3" | "bleu4" | "rouge_l" => format!("{:.2}", 100.0 * v),
        "vqa_accuracy" | "exact_match" | "anls" | "mean_iou" | "invalid_rate" => {
            format!("{:.2}%", 100.0 * v)
        }
        // Accuracies, retrieval recalls (`i2t_r@1`) and zero-shot accuracies are fractions.
        b if b.starts_with("acc") || b.contains("_r@") || b.starts_with("zeroshot_") => {
            format!("{:.2}%", 100.0 * v)
        }
        _ => format!("{v:.4}"),
    }
}

/// Text safe inside a Markdown table cell.
pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown table.
pub(crate) fn md_table(head: &[String], rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| md_cell(c)).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut t = line(head);
    t += &format!("|{}\n", "---|".repeat(head.len()));
    for r in rows {
        t += &line(r);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_escape_pipes() {
        let t = md_table(&["a".into(), "b".into()], &[vec!["x|y".into(), "z".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| x\\|y | z |\n");
    }
}
