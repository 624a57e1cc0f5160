//! PTB tokenization as pycocoevalcap does it, without Java.
//!
//! pycocoevalcap joins a batch of captions with newlines (after turning each caption's own
//! `\n` into a space), runs Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase`
//! on the whole text, reads one output line per caption, and drops the tokens in
//! [`PUNCTUATIONS`]. This module reimplements that lexer: at each position every rule is
//! tried, the longest match wins (JFlex counts trailing context in the length) and the earlier
//! rule wins ties; the options are the tokenizer's defaults (PTB3 escaping, no
//! Americanization, no `/` or `*` escaping). Stanford publishes the grammar (`PTBLexer.flex`)
//! but not the 3.4.1 version of it, so the rules were rebuilt from the 2012 and 2017 versions
//! and settled rule by rule against the 3.4.1 jar that pycocoevalcap ships; the character
//! classes `[:letter:]` and `[:digit:]` are tables read off that jar.
//!
//! Checked against the jar (Java 17, same flags as pycocoevalcap): every Basic Multilingual
//! Plane character in several contexts, every abbreviation of the grammar in four contexts,
//! and several hundred thousand generated lines (caption-like, symbol-heavy, multi-line
//! interactions, random ASCII and Unicode), with identical output; `tests/reference_metrics.rs`
//! repeats an end-to-end check through pycocoevalcap's own wrapper when Java is available.
//!
//! Behaviour worth knowing, all reproduced:
//! - Lower-casing comes after tokenization, so `(` becomes `-lrb-` and survives the
//!   punctuation filter (which lists `-LRB-`); likewise `-lcb-`, `-lsb-` and friends.
//! - Captions are one stream: an abbreviation ending a caption looks at the next one ("etc."
//!   before a caption starting with a capital gives "etc. ."), and characters the lexer reads
//!   as line breaks (`\r`, U+000B, U+000C, U+2028, U+2029) split a caption and shift every later
//!   caption onto the wrong line, as in pycocoevalcap.
//! - Characters outside the Basic Multilingual Plane (emoji, ...) and characters no rule
//!   accepts are deleted.
//!
//! Where it can still differ from Stanford's tokenizer: `[:uppercase:]` (used after
//! abbreviations) and lower-casing follow Rust's Unicode tables, adjusted for the differences
//! found (Cherokee, Roman numerals, circled letters, the final sigma); a capital sigma between
//! digits and punctuation can still get the other form (about 1 in 30,000 random Unicode
//! lines); a token cut between the halves of a surrogate pair would print U+FFFD where Java
//! prints "?"; and a Java whose lower-casing differs from Java 17's would differ likewise.

mod chars;
mod grammar;
mod java_lower;
mod regex;

use grammar::{Emit, Lexer};
use java_lower::lower;

use crate::pystr::rstrip;

/// Tokens pycocoevalcap removes after tokenizing (its `PUNCTUATIONS`).
pub const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Tokenizes a batch of captions as pycocoevalcap's `PTBTokenizer.tokenize` does: one string
/// of space-separated tokens per caption, punctuation removed.
pub fn tokenize_lines(captions: &[&str]) -> Vec<String> {
    let lines = lex_lines(captions);
    (0..captions.len())
        .map(|i| {
            let line = lines.get(i).map(|l| l.join(" ")).unwrap_or_default();
            // pycocoevalcap: `line.rstrip().split(' ')`, keeping tokens not in PUNCTUATIONS.
            rstrip(&line)
                .split(' ')
                .filter(|w| !PUNCTUATIONS.contains(w))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The tokenizer's own output for a batch of captions, before punctuation removal: the
/// lower-cased tokens of each output line (one line per caption unless a caption contains a
/// character the lexer treats as a line break).
pub fn lex_lines(captions: &[&str]) -> Vec<Vec<String>> {
    let text: Vec<String> = captions.iter().map(|c| c.replace('\n', " ")).collect();
    let units: Vec<u16> = text.join("\n").encode_utf16().collect();
    // The tokenizer's stdout: tokens joined by spaces, a line break per newline token.
    let mut out = String::new();
    let mut line_start = true;
    let mut lexer = Lexer::default();
    let mut i = 0;
    while i < units.len() {
        let (emit, tok_end) = lexer.lex_at(&units, i);
        let token = match emit {
            Emit::Token(t) => {
                i = tok_end;
                t
            }
            Emit::TokenKeep(t, keep) => {
                i += keep;
                t
            }
            Emit::Skip => {
                i = tok_end;
                continue;
            }
            Emit::Newline => {
                out.push('\n');
                line_start = true;
                i = tok_end;
                continue;
            }
        };
        if !line_start {
            out.push(' ');
        }
        line_start = false;
        out.push_str(&lower(&token));
    }
    // A token can itself hold a line break (an SGML tag with a multi-line attribute); the
    // reader splits the printed text on '\n' regardless.
    out.split('\n')
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (caption, raw tokenizer output, pycocoevalcap output), each checked with the 3.4.1 jar.
    const CASES: &[(&str, &str, &str)] = &[
        (
            "A man (wearing a hat) rides a horse.",
            "a man -lrb- wearing a hat -rrb- rides a horse .",
            "a man -lrb- wearing a hat -rrb- rides a horse",
        ),
        (
            "The dog's ball isn't red; it's \"blue\"!",
            "the dog 's ball is n't red ; it 's `` blue '' !",
            "the dog 's ball is n't red it 's blue",
        ),
        (
            "I can't, won't, don't, cannot go; gonna wanna.",
            "i ca n't , wo n't , do n't , can not go ; gon na wan na .",
            "i ca n't wo n't do n't can not go gon na wan na",
        ),
        (
            "Mr. Smith went to the U.S. on Jan. 5th, 2015.",
            "mr. smith went to the u.s. on jan. 5th , 2015 .",
            "mr. smith went to the u.s. on jan. 5th 2015",
        ),
        (
            "They're y'all o'clock rock'n'roll 'tis 'em.",
            "they 're y' all o'clock rock 'n' roll 't is 'em .",
            "they 're y' all o'clock rock 'n' roll 't is 'em",
        ),
        (
            "a t-shirt -- with a $5.50 price tag / label * star...",
            "a t-shirt -- with a $ 5.50 price tag / label * star ...",
            "a t-shirt with a $ 5.50 price tag / label * star",
        ),
        (
            "3.14 -5 1,000,000 10:30 1/2 \u{BD} 5 1/2 12/25/2014 3-4",
            "3.14 -5 1,000,000 10:30 1/2 1/2 5\u{A0}1/2 12/25/2014 3-4",
            "3.14 -5 1,000,000 10:30 1/2 1/2 5\u{A0}1/2 12/25/2014 3-4",
        ),
        (
            "{braces} [brackets] <b>bold</b> <<x>> a<b &amp; AT&T",
            "-lcb- braces -rcb- -lsb- brackets -rsb- <b> bold </b> << x >> a < b & at&t",
            "-lcb- braces -rcb- -lsb- brackets -rsb- <b> bold </b> << x >> a < b & at&t",
        ),
        (
            ":) :-( ;) :D x.txt http://x.com/a?b=c foo@bar.com #tag @user",
            ":-rrb- :--lrb- ;-rrb- :d x.txt http://x.com/a?b=c foo@bar.com #tag @user",
            ":-rrb- :--lrb- ;-rrb- :d x.txt http://x.com/a?b=c foo@bar.com #tag @user",
        ),
        (
            "caf\u{E9} NA\u{CF}VE Stra\u{DF}e \u{39F}\u{394}\u{39F}\u{3A3} \u{130}stanbul \u{65E5}\u{672C} emoji\u{1F600} gone",
            "caf\u{E9} na\u{EF}ve stra\u{DF}e \u{3BF}\u{3B4}\u{3BF}\u{3C2} i\u{307}stanbul \u{65E5}\u{672C} emoji gone",
            "caf\u{E9} na\u{EF}ve stra\u{DF}e \u{3BF}\u{3B4}\u{3BF}\u{3C2} i\u{307}stanbul \u{65E5}\u{672C} emoji gone",
        ),
        (
            "\u{201C}curly\u{201D} \u{2018}single\u{2019} \u{AB} guillemets \u{BB} \u{2013} en \u{2014} em \u{2026} ellipsis",
            "`` curly '' ` single ' `` guillemets '' -- en -- em ... ellipsis",
            "curly single guillemets en em ellipsis",
        ),
        // An abbreviation before a capital (here the next caption's) also ends the sentence.
        ("etc.", "etc. .", "etc."),
        // ... and so does one at the very end of the text.
        ("The end etc.", "the end etc. .", "the end etc."),
    ];

    #[test]
    fn documented_cases_match_the_jar() {
        let captions: Vec<&str> = CASES.iter().map(|c| c.0).collect();
        let raw = lex_lines(&captions);
        let fin = tokenize_lines(&captions);
        for (k, (caption, want_raw, want_fin)) in CASES.iter().enumerate() {
            assert_eq!(raw[k].join(" "), *want_raw, "raw tokens of {caption:?}");
            assert_eq!(fin[k], *want_fin, "pycocoevalcap tokens of {caption:?}");
        }
    }

    #[test]
    fn captions_interact_through_the_stream() {
        // "etc." is followed by a lower-case caption: no sentence-final period.
        assert_eq!(
            tokenize_lines(&["a man etc.", "the dog"]),
            ["a man etc.", "the dog"]
        );
        assert_eq!(
            lex_lines(&["a man etc.", "the dog"])[0],
            ["a", "man", "etc."]
        );
        assert_eq!(
            lex_lines(&["a man etc.", "The dog"])[0],
            ["a", "man", "etc.", "."]
        );
        // A carriage return splits the caption and shifts the next one, as in pycocoevalcap.
        let shifted = tokenize_lines(&["one\rtwo", "three"]);
        assert_eq!(shifted, ["one", "two"]);
        // Embedded '\n' is a space; empty captions stay empty lines; a single letter and its
        // period are an abbreviation.
        assert_eq!(
            tokenize_lines(&["a\nb", "", "c.", "cat."]),
            ["a b", "", "c.", "cat"]
        );
    }

    #[test]
    fn punctuation_filter_is_case_sensitive_like_pycocoevalcap() {
        assert_eq!(
            tokenize_lines(&["(a) - b -- c ... d ?! e"]),
            ["-lrb- a -rrb- b c d ?! e"]
        );
        assert_eq!(PUNCTUATIONS.len(), 17);
    }
}
