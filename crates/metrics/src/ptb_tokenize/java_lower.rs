//! Java's `String.toLowerCase(Locale.ENGLISH)`, which the tokenizer applies to each token.
//!
//! It differs from Rust's `to_lowercase` only for the Greek capital sigma: Java picks the final
//! form when, within the sigma's word by Java's word boundaries, a cased letter precedes it and
//! none follows, where Rust looks only at the neighbouring letters. The word rule below was
//! read off Java 17's behaviour; other characters follow Rust's (newer) Unicode tables.

/// Lower-cases one token as Java does.
pub(super) fn lower(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '\u{3A3}' {
            let before = cased_in_word(chars[..i].iter().rev().copied());
            let after = cased_in_word(chars[i + 1..].iter().copied());
            out.push(if before && !after {
                '\u{3C2}'
            } else {
                '\u{3C3}'
            });
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether a cased letter is reached, walking away from a letter, before a word boundary.
/// Letters, digits and combining marks continue a word; so do '.' and '_' between two of them
/// and `-'"`, soft hyphen or a dash between two letters; ideographs and kana stand alone.
fn cased_in_word(mut it: impl Iterator<Item = char>) -> bool {
    let is_cased = |c: char| c.is_lowercase() || c.is_uppercase() || c.to_lowercase().ne([c]);
    let is_ideo = |c: char| matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}');
    let is_mark = |c: char| {
        matches!(c, '\u{300}'..='\u{36F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
    };
    let is_letter = |c: char| c.is_alphabetic() && !is_ideo(c);
    let is_word = |c: char| is_letter(c) || c.is_numeric() || is_mark(c);
    let mut prev_letter = true; // the sigma itself
    while let Some(c) = it.next() {
        if is_cased(c) {
            return true;
        }
        if is_word(c) {
            prev_letter = is_letter(c);
            continue;
        }
        let joins_any = matches!(c, '.' | '_');
        let joins_letters = matches!(c, '-' | '\'' | '"' | '\u{AD}' | '\u{2010}'..='\u{2015}');
        if !(joins_any || (joins_letters && prev_letter)) {
            return false;
        }
        match it.next() {
            Some(n) if is_cased(n) => return true,
            Some(n) if is_word(n) && (joins_any || is_letter(n)) => prev_letter = is_letter(n),
            _ => return false,
        }
    }
    false
}
