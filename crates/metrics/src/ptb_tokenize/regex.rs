//! A small regular-expression engine over UTF-16 code units (JFlex scans Java chars) that
//! returns every end position of a match, so the lexer can pick the longest one.

use std::sync::Arc;

/// A predicate on one UTF-16 code unit.
pub(super) type Pred = Arc<dyn Fn(u16) -> bool + Send + Sync>;

/// A regular expression.
#[derive(Clone)]
pub(super) enum Re {
    /// One code unit satisfying the predicate.
    Class(Pred),
    /// A literal, ASCII letters matched case-insensitively (JFlex `%caseless`).
    Lit(&'static str),
    /// Any of several caseless ASCII literals, indexed by their lower-cased first byte.
    Words(Arc<[Vec<&'static str>; 128]>),
    /// Concatenation.
    Seq(Vec<Re>),
    /// Alternation.
    Alt(Vec<Re>),
    /// Repetition between `min` and `max` times (`usize::MAX`: unbounded).
    Rep(Box<Re>, usize, usize),
}

impl Re {
    /// All positions where a match starting at one of `from` can end, sorted and unique.
    pub(super) fn step(&self, s: &[u16], from: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = match self {
            Re::Class(p) => from
                .iter()
                .filter(|&&i| i < s.len() && p(s[i]))
                .map(|&i| i + 1)
                .collect(),
            Re::Lit(l) => from
                .iter()
                .filter(|&&i| lit_at(s, i, l))
                .map(|&i| i + l.len())
                .collect(),
            Re::Words(index) => {
                let mut out = Vec::new();
                for &i in from {
                    let Some(&u) = s.get(i) else { continue };
                    if u >= 128 {
                        continue;
                    }
                    let first = (u as u8).to_ascii_lowercase();
                    for w in &index[usize::from(first)] {
                        if lit_at(s, i, w) {
                            out.push(i + w.len());
                        }
                    }
                }
                out
            }
            Re::Seq(parts) => {
                let mut cur = from.to_vec();
                for p in parts {
                    if cur.is_empty() {
                        break;
                    }
                    cur = p.step(s, &cur);
                }
                cur
            }
            Re::Alt(alts) => {
                let mut out = Vec::new();
                for a in alts {
                    out.extend(a.step(s, from));
                }
                out
            }
            Re::Rep(p, min, max) => match &**p {
                Re::Class(pred) => scan_run(pred, s, from, *min, *max),
                _ => repeat(p, s, from, *min, *max),
            },
        };
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

impl Re {
    /// Whether some match can start with the code unit `u` (the lexer skips the others).
    pub(super) fn can_start(&self, u: u16) -> bool {
        match self {
            Re::Class(p) => p(u),
            Re::Lit(l) => l
                .as_bytes()
                .first()
                .is_some_and(|&b| u < 128 && (u as u8).eq_ignore_ascii_case(&b)),
            Re::Words(index) => {
                u < 128 && !index[usize::from((u as u8).to_ascii_lowercase())].is_empty()
            }
            Re::Seq(parts) => {
                for part in parts {
                    if part.can_start(u) {
                        return true;
                    }
                    if !part.nullable() {
                        return false;
                    }
                }
                true
            }
            Re::Alt(alts) => alts.iter().any(|a| a.can_start(u)),
            Re::Rep(p, _, _) => p.can_start(u),
        }
    }

    /// Whether the expression matches the empty string.
    fn nullable(&self) -> bool {
        match self {
            Re::Class(_) | Re::Lit(_) | Re::Words(_) => false,
            Re::Seq(parts) => parts.iter().all(Re::nullable),
            Re::Alt(alts) => alts.iter().any(Re::nullable),
            Re::Rep(p, min, _) => *min == 0 || p.nullable(),
        }
    }
}

/// Repetitions of a single-unit class: the ends of each run of matching units from each start.
fn scan_run(pred: &Pred, s: &[u16], from: &[usize], min: usize, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for &i in from {
        let run = s
            .get(i..)
            .unwrap_or(&[])
            .iter()
            .take(max)
            .take_while(|&&u| pred(u))
            .count();
        if run >= min {
            out.extend((min..=run).map(|k| i + k));
        }
    }
    out
}

/// Repetitions of any expression, breadth first over the reachable positions.
fn repeat(p: &Re, s: &[u16], from: &[usize], min: usize, max: usize) -> Vec<usize> {
    let mut out = if min == 0 { from.to_vec() } else { Vec::new() };
    let mut cur = from.to_vec();
    let mut k = 0;
    while k < max && !cur.is_empty() {
        cur = p.step(s, &cur);
        k += 1;
        if k >= min {
            // A position reached again after more repetitions adds nothing.
            cur.retain(|x| !out.contains(x));
            out.extend_from_slice(&cur);
        }
    }
    out
}

/// Whether the caseless ASCII literal `l` occurs in `s` at `i`.
pub(super) fn lit_at(s: &[u16], i: usize, l: &str) -> bool {
    let l = l.as_bytes();
    i + l.len() <= s.len()
        && l.iter()
            .zip(&s[i..])
            .all(|(&b, &u)| u < 128 && (u as u8).eq_ignore_ascii_case(&b))
}

/// A caseless ASCII literal.
pub(super) fn l(s: &'static str) -> Re {
    Re::Lit(s)
}

/// A class given by a predicate.
pub(super) fn pred(p: impl Fn(u16) -> bool + Send + Sync + 'static) -> Re {
    Re::Class(Arc::new(p))
}

/// Any of the characters of `chars`, case-sensitively (a JFlex character class).
pub(super) fn any(chars: &'static str) -> Re {
    let set: Vec<u16> = chars.encode_utf16().collect();
    pred(move |u| set.contains(&u))
}

/// Any code unit not in `chars`.
pub(super) fn none(chars: &'static str) -> Re {
    let set: Vec<u16> = chars.encode_utf16().collect();
    pred(move |u| !set.contains(&u))
}

/// Any code unit in one of the inclusive ranges.
pub(super) fn ranges(rs: &'static [(u16, u16)]) -> Re {
    pred(move |u| rs.iter().any(|&(a, b)| (a..=b).contains(&u)))
}

/// Concatenation.
pub(super) fn seq(v: Vec<Re>) -> Re {
    Re::Seq(v)
}

/// Alternation.
pub(super) fn alt(v: Vec<Re>) -> Re {
    // An alternation of single-unit classes is one class (and scans faster when repeated).
    if v.iter().all(|r| matches!(r, Re::Class(_))) {
        let preds: Vec<Pred> = v
            .into_iter()
            .filter_map(|r| match r {
                Re::Class(p) => Some(p),
                _ => None,
            })
            .collect();
        return pred(move |u| preds.iter().any(|p| p(u)));
    }
    Re::Alt(v)
}

/// Between `min` and `max` repetitions.
pub(super) fn rep(r: Re, min: usize, max: usize) -> Re {
    Re::Rep(Box::new(r), min, max)
}

/// Zero or one.
pub(super) fn opt(r: Re) -> Re {
    rep(r, 0, 1)
}

/// Zero or more.
pub(super) fn star(r: Re) -> Re {
    rep(r, 0, usize::MAX)
}

/// One or more.
pub(super) fn plus(r: Re) -> Re {
    rep(r, 1, usize::MAX)
}

/// Alternation of caseless ASCII literals.
pub(super) fn words(ws: &[&'static str]) -> Re {
    let mut index: [Vec<&'static str>; 128] = std::array::from_fn(|_| Vec::new());
    for w in ws {
        let first = w.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
        index[usize::from(first & 0x7F)].push(w);
    }
    Re::Words(Arc::new(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn step_returns_every_end() {
        let s = units("aab!");
        let re = seq(vec![plus(any("a")), opt(any("b"))]);
        assert_eq!(re.step(&s, &[0]), [1, 2, 3]);
        // Caseless literals, alternatives and bounded repetition.
        let re = seq(vec![words(&["AA", "a"]), rep(any("b!"), 1, 1)]);
        assert_eq!(re.step(&s, &[0]), [3]);
        assert!(l("ab").step(&s, &[0]).is_empty());
        // A general repetition (not of a single class) reaches each position once.
        let re = rep(seq(vec![any("a"), opt(any("b"))]), 0, usize::MAX);
        assert_eq!(re.step(&s, &[0]), [0, 1, 2, 3]);
    }

    #[test]
    fn can_start_sees_through_optional_parts() {
        let re = seq(vec![opt(any("x")), l("ab")]);
        assert!(re.can_start(u16::from(b'x')) && re.can_start(u16::from(b'A')));
        assert!(!re.can_start(u16::from(b'b')));
    }
}
