//! VQA accuracy exactly as the official VQA evaluation code (`vqaEval.py`, GT-Vision-Lab/VQA,
//! as also shipped in salesforce-lavis `lavis/common/vqa_tools/vqa_eval.py`).
//!
//! Per question: the prediction is normalised (newlines/tabs → spaces, strip, punctuation,
//! lower-case, number words → digits, articles dropped, contractions restored); the
//! ground-truth answers are passed through the punctuation step only, and only when they are
//! not all identical (the official `if len(set(gtAnswers)) > 1` branch — identical answers are
//! compared raw). The accuracy is the mean over the leave-one-out subsets (one per
//! ground-truth answer) of min(1, matches among the other answers / 3). Reported numbers are
//! percentages rounded to 2 decimals with Python's `round`; the unrounded ones are kept too.
//!
//! Quirks kept from the official code:
//! - punctuation is deleted (not spaced) when the text has "p " or " p", or any digit,digit
//!   anywhere (checked on the input text, per mark);
//! - the period regex `(?!<=\d)(\.)(?!\d)` removes every "." not followed by a digit, but
//!   `re.UNICODE` is passed as `count`, so at most the first 32 are removed;
//! - `\d` is any Unicode decimal digit, `split()`/`strip()`/`lower()` are Python's.
//!
//! Two differences: the official code leaves out a ground-truth answer by comparing whole
//! answer records (`item != gtAnsDatum`); VQA records carry a unique `answer_id`, so that is
//! leaving out by position, which is what this does. And a question predicted twice is an
//! error here, where the official loader silently keeps the last prediction.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::{MetricsError, Result};
use crate::pystr::{is_decimal, split, strip};

/// Decimals of the official rounding (`VQAEval(n=2)`).
pub const ROUND_DIGITS: usize = 2;

/// Marks handled by `processPunctuation`, in the official order.
const PUNCT: [&str; 21] = [
    ";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
    ",", "?", "!",
];

/// Number words the official code maps to digits.
const MANUAL_MAP: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

/// Articles the official code drops.
const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// The official contractions table (keys with capitals can never match after lower-casing,
/// and "somebody'd" → "somebodyd" is the official table's own oddity).
const CONTRACTIONS: [(&str, &str); 120] = [
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("Id've", "I'd've"),
    ("I'dve", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// One question with its ground truth, as in the VQA annotation and question files.
#[derive(Debug, Clone, PartialEq)]
pub struct VqaQuestion {
    /// `question_id`.
    pub question_id: i64,
    /// `question_type` (e.g. "what color is the").
    pub question_type: String,
    /// `answer_type` ("yes/no", "number", "other").
    pub answer_type: String,
    /// The annotators' answers (ten in VQA v2), in annotation order.
    pub answers: Vec<String>,
}

/// One predicted answer, as in a VQA results file.
#[derive(Debug, Clone, PartialEq)]
pub struct VqaPrediction {
    /// `question_id`.
    pub question_id: i64,
    /// `answer`.
    pub answer: String,
}

/// Accuracies in percent: overall, per question type, per answer type and per question.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VqaBreakdown {
    /// Over all questions.
    pub overall: f64,
    /// Keyed by `question_type`.
    pub per_question_type: BTreeMap<String, f64>,
    /// Keyed by `answer_type`.
    pub per_answer_type: BTreeMap<String, f64>,
    /// Keyed by `question_id`.
    pub per_question: BTreeMap<i64, f64>,
}

/// VQA accuracy as the official code reports it (rounded) and before rounding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VqaAccuracy {
    /// Rounded to [`ROUND_DIGITS`] decimals: `VQAEval.accuracy` and `VQAEval.evalQA`.
    pub reported: VqaBreakdown,
    /// The same values unrounded.
    pub exact: VqaBreakdown,
}

/// The official `processPunctuation`.
pub fn process_punctuation(in_text: &str) -> String {
    let digit_comma_digit = in_text
        .chars()
        .collect::<Vec<_>>()
        .windows(3)
        .any(|w| is_decimal(w[0]) && w[1] == ',' && is_decimal(w[2]));
    let mut out = in_text.to_string();
    for p in PUNCT {
        let delete = in_text.contains(&format!("{p} "))
            || in_text.contains(&format!(" {p}"))
            || digit_comma_digit;
        out = out.replace(p, if delete { "" } else { " " });
    }
    // `periodStrip.sub("", outText, re.UNICODE)`: re.UNICODE (32) lands in `count`.
    let chars: Vec<char> = out.chars().collect();
    let mut removed = 0;
    let mut result = String::with_capacity(out.len());
    for (i, &c) in chars.iter().enumerate() {
        let next_is_digit = chars.get(i + 1).is_some_and(|&n| is_decimal(n));
        if c == '.' && !next_is_digit && removed < 32 {
            removed += 1;
        } else {
            result.push(c);
        }
    }
    result
}

/// The official `processDigitArticle`: lower-case, number words → digits, drop articles,
/// restore contractions.
pub fn process_digit_article(in_text: &str) -> String {
    let lower = in_text.to_lowercase();
    let words: Vec<&str> = split(&lower)
        .map(|w| {
            MANUAL_MAP
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w, |(_, v)| *v)
        })
        .filter(|w| !ARTICLES.contains(w))
        .map(|w| {
            CONTRACTIONS
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w, |(_, v)| *v)
        })
        .collect();
    words.join(" ")
}

/// The prediction as the official code compares it.
pub fn normalize_prediction(answer: &str) -> String {
    let a = answer.replace(['\n', '\t'], " ");
    process_digit_article(&process_punctuation(strip(&a)))
}

/// Accuracy of one prediction against its ground-truth answers, as a fraction in [0, 1].
/// `answers` must not be empty (the result would be 0/0).
pub fn question_accuracy(prediction: &str, answers: &[String]) -> f64 {
    let res = normalize_prediction(prediction);
    let distinct: HashSet<&String> = answers.iter().collect();
    let gts: Vec<String> = if distinct.len() > 1 {
        answers.iter().map(|a| process_punctuation(a)).collect()
    } else {
        answers.to_vec()
    };
    let matching = gts.iter().filter(|g| **g == res).count();
    let mut sum = 0.0;
    for g in &gts {
        // Matches among the other answers: leave this one out.
        let others = matching - usize::from(*g == res);
        sum += (others as f64 / 3.0).min(1.0);
    }
    sum / gts.len() as f64
}

/// Python's `round(x, ROUND_DIGITS)`: half-to-even on the exact binary value.
fn py_round(x: f64) -> f64 {
    format!("{:.*}", ROUND_DIGITS, x).parse().unwrap_or(x)
}

/// VQA accuracy of `predictions` against `questions` (which must cover the same question ids,
/// as the official `loadRes` asserts), overall, per question type and per answer type.
pub fn vqa_accuracy(
    questions: &[VqaQuestion],
    predictions: &[VqaPrediction],
) -> Result<VqaAccuracy> {
    if questions.is_empty() {
        return Err(MetricsError::Invalid("VQA: no questions to score".into()));
    }
    let mut preds: HashMap<i64, &str> = HashMap::new();
    for p in predictions {
        if preds.insert(p.question_id, &p.answer).is_some() {
            return Err(MetricsError::Invalid(format!(
                "VQA: question {} has more than one prediction",
                p.question_id
            )));
        }
    }
    let mut seen = HashSet::new();
    let mut accs = Vec::with_capacity(questions.len());
    for q in questions {
        if !seen.insert(q.question_id) {
            return Err(MetricsError::Invalid(format!(
                "VQA: question {} appears twice in the ground truth",
                q.question_id
            )));
        }
        if q.answers.is_empty() {
            return Err(MetricsError::Invalid(format!(
                "VQA: question {} has no ground-truth answers",
                q.question_id
            )));
        }
        let pred = preds.get(&q.question_id).ok_or_else(|| {
            MetricsError::Invalid(format!("VQA: no prediction for question {}", q.question_id))
        })?;
        accs.push(question_accuracy(pred, &q.answers));
    }
    if let Some(p) = predictions.iter().find(|p| !seen.contains(&p.question_id)) {
        return Err(MetricsError::Invalid(format!(
            "VQA: prediction for question {} which is not in the ground truth",
            p.question_id
        )));
    }

    // Group in question order so sums run in the official order.
    let mut by_qtype: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut by_atype: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (q, &a) in questions.iter().zip(&accs) {
        by_qtype.entry(&q.question_type).or_default().push(a);
        by_atype.entry(&q.answer_type).or_default().push(a);
    }
    let percent = |xs: &[f64]| 100.0 * xs.iter().fold(0.0, |s, &x| s + x) / xs.len() as f64;
    let exact = VqaBreakdown {
        overall: percent(&accs),
        per_question_type: by_qtype
            .iter()
            .map(|(k, v)| (k.to_string(), percent(v)))
            .collect(),
        per_answer_type: by_atype
            .iter()
            .map(|(k, v)| (k.to_string(), percent(v)))
            .collect(),
        per_question: questions
            .iter()
            .zip(&accs)
            .map(|(q, &a)| (q.question_id, 100.0 * a))
            .collect(),
    };
    let round_map = |m: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        m.iter().map(|(k, &v)| (k.clone(), py_round(v))).collect()
    };
    let reported = VqaBreakdown {
        overall: py_round(exact.overall),
        per_question_type: round_map(&exact.per_question_type),
        per_answer_type: round_map(&exact.per_answer_type),
        per_question: exact
            .per_question
            .iter()
            .map(|(&k, &v)| (k, py_round(v)))
            .collect(),
    };
    Ok(VqaAccuracy { reported, exact })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn punctuation_spaces_or_deletes_like_the_official_code() {
        // No "p " / " p" and no digit,digit: marks become spaces.
        assert_eq!(process_punctuation("yes/no"), "yes no");
        // "? " present → "?" deleted; "/" has no space next to it but is checked separately.
        assert_eq!(process_punctuation("what? a/b"), "what a b");
        // A digit,digit anywhere deletes every mark.
        assert_eq!(process_punctuation("1,000 a/b"), "1000 ab");
        // Periods go unless a digit follows.
        assert_eq!(process_punctuation("mr. 3.5 end."), "mr 3.5 end");
        // Only the first 32 periods go (re.UNICODE passed as count).
        let dots = ".".repeat(40);
        assert_eq!(process_punctuation(&dots), ".".repeat(8));
        // Unicode digits count as \d.
        assert_eq!(process_punctuation("\u{661},\u{662}-x"), "\u{661}\u{662}x");
    }

    #[test]
    fn digits_articles_contractions() {
        assert_eq!(process_digit_article("The  Two dogs"), "2 dogs");
        assert_eq!(process_digit_article("dont an ten"), "don't 10");
        assert_eq!(normalize_prediction("\tA Dog.\n"), "dog");
    }

    #[test]
    fn leave_one_out_accuracy_by_hand() {
        // 2 of 10 say "cat": leaving out a "cat" leaves 1 match (1/3), others leave 2 (2/3):
        // (2·1/3 + 8·2/3) / 10 = 0.6.
        let mut a = vec!["cat"; 2];
        a.extend(vec!["dog"; 8]);
        let acc = question_accuracy("Cat", &answers(&a));
        assert!((acc - 0.6).abs() < 1e-12, "{acc}");
        // Four or more matches → 1 whatever is left out.
        let a = answers(&["cat", "cat", "cat", "cat", "dog"]);
        assert_eq!(question_accuracy("cat", &a), 1.0);
    }

    #[test]
    fn ground_truth_is_processed_only_when_answers_disagree() {
        // All ten identical: compared raw, so "2 dogs" never equals the raw "two dogs".
        let same = answers(&["two dogs"; 10]);
        assert_eq!(question_accuracy("two dogs", &same), 0.0);
        // Disagreeing answers get punctuation processing only: "yes." → "yes" matches 3 times.
        let mixed = answers(&["yes.", "yes.", "yes.", "no"]);
        assert_eq!(question_accuracy("yes", &mixed), 0.75);
        // ... but "yes!" → "yes " (the mark becomes a space, nothing strips it): no match.
        let bang = answers(&["yes!", "yes!", "yes!", "no"]);
        assert_eq!(question_accuracy("yes", &bang), 0.0);
    }

    #[test]
    fn report_rounds_like_python_and_checks_ids() {
        let q = |id, qt: &str, at: &str, a: &[&str]| VqaQuestion {
            question_id: id,
            question_type: qt.into(),
            answer_type: at.into(),
            answers: answers(a),
        };
        let qs = vec![
            q(1, "what", "other", &["cat", "dog", "dog", "dog"]),
            q(2, "is", "yes/no", &["yes", "yes", "no", "no"]),
            q(3, "is", "yes/no", &["yes", "yes", "yes", "yes"]),
        ];
        let p = |id, a: &str| VqaPrediction {
            question_id: id,
            answer: a.into(),
        };
        let r = vqa_accuracy(&qs, &[p(1, "cat"), p(2, "yes"), p(3, "yes")]).unwrap();
        // q1: (0 + 3·1/3)/4 = 1/4, q2: (2·1/3 + 2·2/3)/4 = 1/2, q3: 1 → 58.33%; "is": 75%.
        assert_eq!(r.reported.overall, 58.33);
        assert_eq!(r.exact.overall, 100.0 * 1.75 / 3.0);
        assert_eq!(r.reported.per_question_type["is"], 75.0);
        assert_eq!(r.reported.per_answer_type["other"], 25.0);
        assert_eq!(r.reported.per_question[&2], 50.0);
        let err = vqa_accuracy(&qs, &[p(1, "cat"), p(2, "yes")]).unwrap_err();
        assert!(err.to_string().contains("question 3"), "{err}");
        let err = vqa_accuracy(&qs, &[p(1, "a"), p(2, "a"), p(3, "a"), p(9, "a")]).unwrap_err();
        assert!(err.to_string().contains("question 9"), "{err}");
        assert_eq!(py_round(2.675), 2.67);
        assert_eq!(py_round(0.125), 0.12);
    }
}
