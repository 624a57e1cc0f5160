//! Task prompts and targets as PaLI states them: `caption {lang}`, `answer {lang} {question}`,
//! `detect {expression}` (target: four location tokens). Templates are plain strings with
//! `{field}` placeholders, so a mixture entry can name its own.

use std::collections::BTreeMap;

use crate::error::{DataError, Result};
use crate::loc::{box_to_tokens, NormBox};

/// Default prompt of captioning.
pub const CAPTION: &str = "caption {lang}";
/// Default prompt of VQA.
pub const ANSWER: &str = "answer {lang} {question}";
/// Default prompt of referring-expression detection.
pub const DETECT: &str = "detect {expression}";

/// Fills `{name}` placeholders from `fields`; an unknown placeholder or a stray brace is an error
/// naming it.
pub fn render(template: &str, fields: &BTreeMap<&str, String>) -> Result<String> {
    let bad = |m: String| DataError::config("prompt", format!("{template:?}: {m}"));
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        if rest[open..].starts_with('}') {
            return Err(bad("a '}' without its '{'".into()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| bad("a '{' without its '}'".into()))?
            + open;
        let name = &rest[open + 1..close];
        let value = fields.get(name).ok_or_else(|| {
            bad(format!(
                "no field {{{name}}} (this task has {})",
                fields
                    .keys()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The most frequent answer (ties go to the one seen first), as VQA training targets use.
pub fn majority_answer(answers: &[String]) -> Option<String> {
    let mut counts: Vec<(&String, usize)> = Vec::new();
    for a in answers {
        match counts.iter_mut().find(|(x, _)| *x == a) {
            Some((_, c)) => *c += 1,
            None => counts.push((a, 1)),
        }
    }
    let best = counts.iter().map(|(_, c)| *c).max()?;
    counts
        .into_iter()
        .find(|(_, c)| *c == best)
        .map(|(a, _)| a.clone())
}

/// The detection target of a COCO pixel box `[x, y, w, h]` in a `width` × `height` image.
pub fn detect_target(xywh: [f64; 4], width: f64, height: f64) -> Result<String> {
    box_to_tokens(&NormBox::from_coco_xywh(xywh, width, height)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_paper_prompts_and_names_missing_fields() {
        let f: BTreeMap<&str, String> = [
            ("lang", "en".to_string()),
            ("question", "what color is the circle?".to_string()),
        ]
        .into();
        assert_eq!(
            render(ANSWER, &f).unwrap(),
            "answer en what color is the circle?"
        );
        assert_eq!(render(CAPTION, &f).unwrap(), "caption en");
        let e = render(DETECT, &f).unwrap_err().to_string();
        assert!(e.contains("{expression}") && e.contains("{lang}"), "{e}");
        assert!(render("a {lang", &f).is_err());
        assert!(render("a } b", &f).is_err());
    }

    #[test]
    fn majority_and_detection_targets() {
        let a: Vec<String> = ["2", "two", "2", "3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(majority_answer(&a).as_deref(), Some("2"));
        assert_eq!(majority_answer(&[]), None);
        assert_eq!(
            detect_target([0.0, 0.0, 100.0, 50.0], 100.0, 100.0).unwrap(),
            "<loc0000><loc0000><loc0512><loc1023>"
        );
    }
}
