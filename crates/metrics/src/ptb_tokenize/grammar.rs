//! The PTB lexer's rules: building blocks of the grammar, token actions, and the rule list in
//! priority order.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::chars::*;
use super::regex::*;

/// What a rule's action produces.
pub(super) enum Emit {
    /// A token; the whole match is consumed.
    Token(String),
    /// A token, consuming only the first `usize` code units (JFlex `yypushback`).
    TokenKeep(String, usize),
    /// Nothing (whitespace, deleted characters).
    Skip,
    /// A line break.
    Newline,
}

/// One lexer rule: a pattern, an optional trailing context, and its action.
pub(super) struct Rule {
    re: Re,
    ctx: Option<Re>,
    act: fn(&[u16]) -> Emit,
}

/// Finds tokens, remembering which rules can start with each code unit seen.
#[derive(Default)]
pub(super) struct Lexer {
    candidates: HashMap<u16, Vec<usize>>,
}

impl Lexer {
    /// The token at `i`: what the longest-matching rule's action gives, and the end of its
    /// match.
    pub(super) fn lex_at(&mut self, s: &[u16], i: usize) -> (Emit, usize) {
        let all = rules();
        let Some(&u) = s.get(i) else {
            return (Emit::Skip, i + 1);
        };
        let candidates = self
            .candidates
            .entry(u)
            .or_insert_with(|| (0..all.len()).filter(|&r| all[r].re.can_start(u)).collect());
        match longest_match(candidates.iter().map(|&r| &all[r]), s, i) {
            (Some(rule), end) => ((rule.act)(&s[i..end]), end),
            (None, end) => (Emit::Skip, end),
        }
    }
}

/// The rule with the longest match at `i` (trailing context included in the length, earlier
/// rules winning ties) and the end of its token.
fn longest_match<'r>(
    rules: impl Iterator<Item = &'r Rule>,
    s: &[u16],
    i: usize,
) -> (Option<&'r Rule>, usize) {
    let mut best: Option<(usize, &Rule, usize)> = None;
    for rule in rules {
        let ends = rule.re.step(s, &[i]);
        let Some(&last) = ends.last() else { continue };
        let (total, tok_end) = match &rule.ctx {
            None => (last, last),
            Some(ctx) => {
                let mut found: Option<(usize, usize)> = None;
                for &e in ends.iter().rev() {
                    if let Some(&t) = ctx.step(s, &[e]).last() {
                        if found.is_none_or(|(ft, _)| t > ft) {
                            found = Some((t, e));
                        }
                    }
                }
                match found {
                    Some(f) => f,
                    None => continue,
                }
            }
        };
        if best.is_none_or(|(t, _, _)| total > t) {
            best = Some((total, rule, tok_end));
        }
    }
    match best {
        Some((_, rule, end)) => (Some(rule), end),
        None => (None, i + 1),
    }
}

/// SPACE: blanks inside a line.
fn space() -> Re {
    alt(vec![any(" \t\u{A0}\u{3000}"), ranges(&[(0x2000, 0x200A)])])
}

/// NEWLINE: what the lexer treats as a line break (each one ends an output line).
fn newline() -> Re {
    alt(vec![
        seq(vec![opt(any("\r")), any("\n")]),
        any("\r\u{2028}\u{2029}\u{0B}\u{0C}\u{85}"),
    ])
}

/// SPACENL: SPACE or NEWLINE.
fn spacenl() -> Re {
    alt(vec![space(), newline()])
}

/// SGML: a tag; attribute values must be quoted ("<a href=x>" is not a tag in 3.4.1).
fn sgml() -> Re {
    let name = || {
        seq(vec![
            ascii_alpha(),
            star(alt(vec![ascii_alnum(), any("_:.-")])),
        ])
    };
    let quoted = alt(vec![
        seq(vec![any("'"), star(none("'")), any("'")]),
        seq(vec![any("\""), star(none("\"")), any("\"")]),
    ]);
    let attr = seq(vec![
        plus(any(" ")),
        name(),
        opt(seq(vec![star(any(" ")), any("="), star(any(" ")), quoted])),
    ]);
    seq(vec![
        any("<"),
        alt(vec![
            seq(vec![
                any("!?"),
                alt(vec![ascii_alpha(), any("-")]),
                star(none(">\r\n")),
            ]),
            seq(vec![name(), star(attr), star(any(" ")), opt(any("/"))]),
            seq(vec![any("/"), name()]),
        ]),
        star(any(" ")),
        any(">"),
    ])
}

/// SENTEND: what makes a period after an abbreviation a sentence end as well.
fn sentend() -> Re {
    seq(vec![
        spacenl(),
        alt(vec![spacenl(), pred(is_upper), sgml()]),
    ])
}

/// NUM: digits with inner separators (":20" and ".5" included).
fn num() -> Re {
    alt(vec![
        plus(digit()),
        seq(vec![
            star(digit()),
            plus(seq(vec![any(".:,\u{AD}\u{66B}\u{66C}"), plus(digit())])),
        ]),
    ])
}

/// NUMBER: NUM with an optional sign.
fn number() -> Re {
    seq(vec![opt(any("-+")), num()])
}

/// SPLET: an accented-vowel entity such as "&eacute;".
fn splet() -> Re {
    seq(vec![
        any("&"),
        any("aeiouAEIOU"),
        words(&["acute", "grave", "uml"]),
        any(";"),
    ])
}

/// LETTER: `[:letter:]`, SPLET or one of the extra combining marks.
fn letter_ext() -> Re {
    alt(vec![letter(), splet(), ranges(LETTER_EXTRA)])
}

/// WORD: letters and digits starting with a letter, possibly joined by ".", "!" or "?".
fn word() -> Re {
    let part = || seq(vec![letter_ext(), star(alt(vec![letter_ext(), digit()]))]);
    seq(vec![part(), star(seq(vec![any(".!?"), part()]))])
}

/// APOS: apostrophes.
fn apos() -> Re {
    alt(vec![any("'\u{92}\u{2019}"), l("&apos;")])
}

/// APOSETCETERA: APOS and the other marks that occur inside words.
fn apos_etc() -> Re {
    alt(vec![apos(), any("`\u{91}\u{2018}\u{201B}")])
}

/// `[:letter:]` or `[:digit:]`.
fn alnum_u() -> Re {
    alt(vec![letter(), digit()])
}

/// HYPHEN: the joiners of THING.
fn hyphen() -> Re {
    any("-_\u{58A}\u{2010}\u{2011}")
}

/// THING: letters and digits joined by hyphens, with optional "d'"/"o'"/"l'" prefixes.
fn thing() -> Re {
    let pre = || opt(seq(vec![any("dDoOlL"), apos_etc(), alnum_u()]));
    seq(vec![
        pre(),
        plus(alnum_u()),
        star(seq(vec![hyphen(), pre(), plus(alnum_u())])),
    ])
}

/// ACRO: letters joined by periods ("a.k.a", and a single letter), and a few "U.S" forms.
fn acro() -> Re {
    acro_min(0)
}

/// ACRO2: like [`acro`] but with at least two letters.
fn acro2() -> Re {
    acro_min(1)
}

/// ACRO with at least `min_dots` periods.
fn acro_min(min_dots: usize) -> Re {
    alt(vec![
        seq(vec![
            ascii_alpha(),
            rep(seq(vec![any("."), ascii_alpha()]), min_dots, usize::MAX),
        ]),
        seq(vec![
            words(&["Canada", "Sino", "Korean", "EU", "Japan", "non"]),
            l("-U.S"),
        ]),
        seq(vec![l("U.S.-"), words(&["U.K", "U.S.S.R"])]),
    ])
}

/// REDAUX: the clitics 's 'm 'd 're 've 'll.
fn redaux() -> Re {
    seq(vec![
        apos(),
        alt(vec![any("msdMSD"), l("re"), l("ve"), l("ll")]),
    ])
}

/// SREDAUX: n't.
fn sredaux() -> Re {
    seq(vec![l("n"), apos_etc(), l("t")])
}

/// DBLQUOT: a straight double quote.
fn dblquot() -> Re {
    alt(vec![any("\""), l("&quot;")])
}

/// INSENTP: sentence-internal punctuation.
fn insentp() -> Re {
    any(",;:\u{3001}")
}

/// A URL character: anything but blanks, quotes, angle brackets, bars, parentheses and `extra`.
fn url_char_excluding(extra: &'static str) -> Re {
    let base: Vec<u16> = " \t\n\u{0C}\r\"<>|()".encode_utf16().collect();
    let more: Vec<u16> = extra.encode_utf16().collect();
    pred(move |u| !base.contains(&u) && !more.contains(&u))
}

/// ABBREV1: abbreviations usually followed by lower-case words (a capital after one also
/// starts a sentence).
fn abbrev1() -> Re {
    let abmonth = words(&[
        "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
    ]);
    let abdays = words(&["Mon", "Tue", "Tues", "Wed", "Thu", "Thurs", "Fri"]);
    let abstate = alt(vec![
        words(&[
            "Ala", "Ariz", "Calif", "Colo", "Conn", "Ct", "Dak", "Fla", "Ga", "Ind", "Kan", "Kans",
            "Ky", "Md", "Mich", "Minn", "Mo", "Mont", "Neb", "Nev", "Okla", "Penn", "Tenn", "Va",
            "Vt", "Wis", "Wisc", "Wyo",
        ]),
        seq(vec![cap('A'), l("z")]),
        seq(vec![cap('A'), l("rk")]),
        seq(vec![cap('D'), l("el")]),
        seq(vec![cap('I'), l("ll")]),
        seq(vec![cap('L'), l("a")]),
        seq(vec![cap('M'), l("ass")]),
        seq(vec![cap('M'), l("iss")]),
        seq(vec![cap('O'), l("re")]),
        seq(vec![cap('P'), l("a")]),
        seq(vec![cap('T'), l("ex")]),
        seq(vec![cap('W'), l("ash")]),
    ]);
    let abcomp = alt(vec![
        words(&[
            "Inc", "Co", "Cos", "Corp", "Ltd", "Plc", "Rt", "Bancorp", "Bhd", "Assn", "Univ",
            "Intl", "Sys",
        ]),
        // Pp?t[ye]s?
        seq(vec![l("p"), opt(l("p")), l("t"), any("ye"), opt(l("s"))]),
    ]);
    let abnum = words(&["tel", "est", "ext", "sq"]);
    let abptit = alt(vec![
        words(&["Jr", "Sr", "Bros", "Blvd", "Rd", "Esq"]),
        seq(vec![words(&["Ed", "Ph"]), l(".D")]),
    ]);
    seq(vec![
        alt(vec![
            abmonth,
            abdays,
            abstate,
            abcomp,
            abnum,
            abptit,
            words(&["etc", "al", "seq", "Bldg"]),
        ]),
        l("."),
    ])
}

/// ABBREV4: abbreviations usually followed by capitals (titles, single letters, acronyms).
fn abbrev4() -> Re {
    let abtitle = alt(vec![
        words(&[
            "Mr", "Mrs", "Ms", "Dr", "Drs", "Prof", "Profs", "Sen", "Sens", "Rep", "Reps", "Atty",
            "Attys", "Lt", "Col", "Gen", "Messrs", "Gov", "Govs", "Adm", "Rev", "Maj", "Sgt",
            "Cpl", "Pvt", "Capt", "St", "Ste", "Ave", "Pres", "Lieut", "Rt", "Hon", "Brig", "Cmdr",
            "Comdr", "Pfc", "Spc", "Supt", "Supts", "Det", "Mt", "Ft", "Adj", "Adv", "Asst",
            "Assoc", "Ens", "Insp", "Mlle", "Mme", "Msgr", "Sfc",
        ]),
        seq(vec![cap('M'), l("iss")]),
    ]);
    let abcomp2 = alt(vec![
        words(&["Invt", "Elec", "Natl", "Dept"]),
        seq(vec![l("m"), any("ft"), l("g")]),
    ]);
    alt(vec![
        abtitle,
        l("vs"),
        any("v"),
        words(&["Alex", "Wm", "Jos", "Cie", "a.k.a", "cf", "TREAS", "Ph"]),
        ascii_alpha(),
        acro(),
        abcomp2,
    ])
}

/// ABBREV3: abbreviations recognised only before a number ("fig. 3").
fn abbrev3() -> Re {
    seq(vec![
        words(&["ca", "fig", "figs", "prop", "no", "nos", "art", "pp", "op"]),
        l("."),
    ])
}

// Actions.

/// The matched text (a token never ends inside a surrogate pair in practice).
fn text(t: &[u16]) -> String {
    String::from_utf16_lossy(t)
}

/// The match as it is.
fn keep(t: &[u16]) -> Emit {
    Emit::Token(text(t))
}

/// No token.
fn skip(_: &[u16]) -> Emit {
    Emit::Skip
}

/// A newline token, i.e. a line break in the output.
fn line_break(_: &[u16]) -> Emit {
    Emit::Newline
}

/// JFlex `yypushback(n)`: the token is the match minus its last `n` units, which are re-read.
fn push_back(t: &[u16], n: usize) -> Emit {
    let k = t.len().saturating_sub(n);
    Emit::TokenKeep(text(&t[..k]), k)
}

/// The whole abbreviation as a token, its final period read again as a sentence end.
fn dup_period(t: &[u16]) -> Emit {
    Emit::TokenKeep(text(t), t.len().saturating_sub(1))
}

/// `processAcronym`: a single letter and its period are two tokens ("I."), longer acronyms
/// keep their period and give another one as the sentence end.
fn acronym(t: &[u16]) -> Emit {
    if t.len() == 2 {
        push_back(t, 1)
    } else {
        dup_period(t)
    }
}

/// The match without soft hyphens ("-" if nothing is left).
fn remove_soft_hyphens(t: &[u16]) -> Emit {
    let s: String = text(t).chars().filter(|&c| c != '\u{AD}').collect();
    Emit::Token(if s.is_empty() { "-".into() } else { s })
}

/// "&amp;" (any case) becomes "&".
fn normalize_amp(t: &[u16]) -> Emit {
    let s = text(t);
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let tail = &rest[p..];
        if tail.len() >= 5 && tail[..5].eq_ignore_ascii_case("&amp;") {
            out.push('&');
            rest = &tail[5..];
        } else {
            out.push('&');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Emit::Token(out)
}

/// Spaces inside a token become no-break spaces.
fn nbsp_spaces(t: &[u16]) -> Emit {
    Emit::Token(text(t).replace(' ', "\u{A0}"))
}

/// Parentheses inside a token become -LRB- / -RRB-.
fn parens(t: &[u16]) -> Emit {
    Emit::Token(text(t).replace('(', "-LRB-").replace(')', "-RRB-"))
}

/// Both of the above, for phone numbers.
fn phone_normalize(t: &[u16]) -> Emit {
    Emit::Token(
        text(t)
            .replace(' ', "\u{A0}")
            .replace('(', "-LRB-")
            .replace(')', "-RRB-"),
    )
}

/// Stanford's `latexQuotes`: straight quotes by the guessed side, curly ones by their shape.
fn latex_quotes(t: &[u16], probably_left: bool) -> Emit {
    let s = text(t);
    let (single, double) = if probably_left {
        ("`", "``")
    } else {
        ("'", "''")
    };
    // Java's `replaceAll("&apos;|'", ...)`: the entity is matched case-sensitively.
    let s = s.replace("&apos;", single).replace('\'', single);
    let s = s.replace("&quot;", double).replace('"', double);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{91}' | '\u{2018}' | '\u{201B}' | '\u{2039}' => out.push('`'),
            '\u{92}' | '\u{2019}' | '\u{203A}' => out.push('\''),
            '\u{93}' | '\u{201C}' | '\u{AB}' => out.push_str("``"),
            '\u{94}' | '\u{201D}' | '\u{BB}' => out.push_str("''"),
            c => out.push(c),
        }
    }
    Emit::Token(out)
}

/// Quotes guessed to open.
fn quote_left(t: &[u16]) -> Emit {
    latex_quotes(t, true)
}

/// Quotes guessed to close.
fn quote_right(t: &[u16]) -> Emit {
    latex_quotes(t, false)
}

/// The five common vulgar fractions spelled with a slash.
fn fractions(t: &[u16]) -> Emit {
    let s: String = text(t)
        .chars()
        .map(|c| match c {
            '\u{BC}' => "1/4".to_string(),
            '\u{BD}' => "1/2".to_string(),
            '\u{BE}' => "3/4".to_string(),
            '\u{2153}' => "1/3".to_string(),
            '\u{2154}' => "2/3".to_string(),
            c => c.to_string(),
        })
        .collect();
    Emit::Token(s)
}

/// PTB3 currency mapping: cent sign to "cents", pound to "#", euro and others to "$".
fn currency(t: &[u16]) -> Emit {
    let s: String = text(t)
        .chars()
        .map(|c| match c {
            '\u{A2}' => "cents".to_string(),
            '\u{A3}' => "#".to_string(),
            '\u{80}' | '\u{A4}' | '\u{20A0}' | '\u{20AC}' => "$".to_string(),
            c => c.to_string(),
        })
        .collect();
    Emit::Token(s)
}

/// Three or four hyphens make a dash "--".
fn hyphens(t: &[u16]) -> Emit {
    if (3..=4).contains(&t.len()) {
        Emit::Token("--".into())
    } else {
        keep(t)
    }
}

// The rules, in the grammar's priority order.

/// A rule without trailing context.
fn rule(re: Re, act: fn(&[u16]) -> Emit) -> Rule {
    Rule { re, ctx: None, act }
}

/// A rule whose match must be followed by `ctx` (counted in its length, not consumed).
fn rule_ctx(re: Re, ctx: Re, act: fn(&[u16]) -> Emit) -> Rule {
    Rule {
        re,
        ctx: Some(ctx),
        act,
    }
}

/// The rules, built once.
fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(build_rules)
}

/// The rules in the grammar's priority order (earlier wins a tie in length).
fn build_rules() -> Vec<Rule> {
    let not_ascii_alnum = pred(|u| !is_ascii_alnum(u));
    let smiley = seq(vec![
        opt(any("<>")),
        any(":;="),
        opt(any("-o*'")),
        any("()DPdpO\\{@|[]"),
    ]);
    let asian_eye = || any("-^x=~<>'");
    let asian = alt(vec![
        seq(vec![any("^x=~<>"), any("."), l("[^x=~<>]")]),
        seq(vec![asian_eye(), any("_"), asian_eye()]),
        seq(vec![
            any("("),
            asian_eye(),
            opt(any("_.")),
            asian_eye(),
            any(")"),
        ]),
        seq(vec![
            any("("),
            any("^x=~<>'"),
            any("-"),
            any("^x=~<>'`"),
            any(")"),
        ]),
    ]);
    let acronym_next = alt(vec![
        seq(vec![
            cap('A'),
            words(&["bout", "ccording", "dditionally", "fter", "n", "s", "t"]),
        ]),
        cap('A'),
        seq(vec![cap('B'), l("ut")]),
        seq(vec![cap('E'), l("arlier")]),
        seq(vec![cap('H'), words(&["e", "er", "ere", "owever"])]),
        seq(vec![cap('I'), words(&["f", "n", "t"])]),
        seq(vec![cap('L'), l("ast")]),
        seq(vec![cap('M'), words(&["any", "ore", "r.", "s."])]),
        seq(vec![cap('N'), l("ow")]),
        seq(vec![cap('O'), words(&["nce", "ne", "ther", "ur"])]),
        seq(vec![cap('S'), words(&["he", "ince", "o", "ome", "uch"])]),
        seq(vec![
            cap('T'),
            words(&["hat", "he", "heir", "hen", "here", "hese", "hey", "his"]),
        ]),
        seq(vec![cap('W'), words(&["e", "hen", "hile", "hat"])]),
        seq(vec![cap('Y'), words(&["et", "ou"])]),
    ]);
    let apoword = alt(vec![
        seq(vec![apos(), l("n"), opt(apos())]),
        seq(vec![any("lLdDjJ"), apos()]),
        seq(vec![words(&["Dunkin", "somethin", "ol"]), apos()]),
        seq(vec![apos(), l("em")]),
        seq(vec![
            alt(vec![
                ranges(&[(0x41, 0x48), (0x4A, 0x58), (0x5A, 0x5A)]),
                any("n"),
            ]),
            apos_etc(),
            letter(),
            plus(letter()),
        ]),
        seq(vec![apos(), ranges(&[(0x32, 0x39)]), l("0s")]),
        seq(vec![apos(), l("til"), opt(l("l"))]),
        seq(vec![
            plus(letter()),
            any("aeiouyAEIOUY"),
            apos_etc(),
            alt(vec![any("aeiou"), upper_ascii()]),
            star(letter()),
        ]),
        seq(vec![apos(), l("cause")]),
        seq(vec![l("o"), apos_etc(), l("o")]),
        seq(vec![l("cont'd"), opt(l("."))]),
        words(&[
            "'twas",
            "nor'easter",
            "c'mon",
            "e'er",
            "s'mores",
            "ev'ry",
            "li'l",
            "nat'l",
        ]),
    ]);
    let full_url = seq(vec![
        l("http"),
        opt(l("s")),
        l("://"),
        plus(url_char_excluding("{}")),
        url_char_excluding(".!?{},-"),
    ]);
    let likely_url = seq(vec![
        alt(vec![
            seq(vec![
                l("www."),
                plus(seq(vec![plus(url_char_excluding(".!?{},")), any(".")])),
                rep(ascii_alpha(), 2, 4),
            ]),
            // The grammar's class `[^ ... ,-_$]` holds the range ',' to '_' (digits, capitals
            // and most ASCII punctuation), kept as is.
            seq(vec![
                plus(seq(vec![
                    plus(pred(|u| {
                        !(0x2C..=0x5F).contains(&u)
                            && !" \t\n\u{0C}\r\"`'<>|.!?(){}$"
                                .encode_utf16()
                                .any(|x| x == u)
                    })),
                    any("."),
                ])),
                words(&["com", "net", "org", "edu"]),
            ]),
        ]),
        opt(seq(vec![
            any("/"),
            plus(url_char_excluding("")),
            url_char_excluding(".!?{},-"),
        ])),
    ]);
    let email_char = || url_char_excluding("\u{A0}{}");
    let email_part = || url_char_excluding(".\u{A0}{}");
    let email = seq(vec![
        opt(alt(vec![l("&lt;"), any("<")])),
        ascii_alnum(),
        star(email_char()),
        any("@"),
        star(seq(vec![plus(email_part()), any(".")])),
        plus(email_part()),
        opt(alt(vec![l("&gt;"), any(">")])),
    ]);
    let twitter = alt(vec![
        seq(vec![
            any("@"),
            alt(vec![ascii_alpha(), any("_")]),
            star(alt(vec![ascii_alnum(), any("_")])),
        ]),
        seq(vec![any("#"), plus(letter_ext())]),
    ]);
    let date = seq(vec![
        rep(digit(), 1, 2),
        any("-/"),
        rep(digit(), 1, 2),
        any("-/"),
        rep(digit(), 2, 4),
    ]);
    let subsupnum = seq(vec![
        opt(any("\u{207A}\u{207B}\u{208A}\u{208B}")),
        alt(vec![
            plus(alt(vec![
                any("\u{2070}\u{B9}\u{B2}\u{B3}"),
                ranges(&[(0x2074, 0x2079)]),
            ])),
            plus(ranges(&[(0x2080, 0x2089)])),
        ]),
    ]);
    let frac = seq(vec![
        opt(seq(vec![rep(digit(), 1, 4), any("- \u{A0}")])),
        rep(digit(), 1, 4),
        alt(vec![seq(vec![opt(any("\\")), any("/")]), any("\u{2044}")]),
        rep(digit(), 1, 4),
    ]);
    let frac2 = alt(vec![any("\u{BC}\u{BD}\u{BE}"), ranges(&[(0x2153, 0x215E)])]);
    let tbspec = alt(vec![
        seq(vec![
            any("-"),
            words(&["RRB", "LRB", "RCB", "LCB", "RSB", "LSB"]),
            any("-"),
        ]),
        words(&["C.D.s", "pro-", "anti-"]),
        seq(vec![
            l("S"),
            alt(vec![l("&amp;"), any("&")]),
            words(&["P-500", "Ls"]),
        ]),
        seq(vec![l("Cap"), apos(), l("n")]),
        seq(vec![l("c"), apos(), l("est")]),
    ]);
    let thing3_part = || {
        seq(vec![
            plus(ascii_alnum()),
            rep(seq(vec![any("-"), plus(ascii_alpha())]), 0, 2),
        ])
    };
    let thing3 = seq(vec![
        thing3_part(),
        rep(seq(vec![opt(any("\\")), any("/"), thing3_part()]), 1, 2),
    ]);
    let dolsign = alt(vec![seq(vec![star(upper_ascii()), any("$")]), any("#")]);
    let dolsign2 = any(
        "\u{A2}\u{A3}\u{A4}\u{A5}\u{80}\u{20A0}\u{20AC}\u{60B}\u{E3F}\u{20A4}\u{FFE0}\u{FFE1}\u{FFE5}\u{FFE6}",
    );
    let phone = alt(vec![
        seq(vec![
            alt(vec![
                seq(vec![
                    any("("),
                    rep(pred(is_ascii_digit), 2, 3),
                    any(")"),
                    opt(any(" \u{A0}")),
                ]),
                seq(vec![
                    opt(seq(vec![any("+"), opt(any("+"))])),
                    opt(seq(vec![rep(pred(is_ascii_digit), 2, 4), any("- \u{A0}")])),
                    rep(pred(is_ascii_digit), 2, 4),
                    any("- \u{A0}"),
                ]),
            ]),
            rep(pred(is_ascii_digit), 3, 4),
            opt(any("- \u{A0}")),
            rep(pred(is_ascii_digit), 3, 5),
        ]),
        seq(vec![
            opt(seq(vec![
                opt(seq(vec![any("+"), opt(any("+"))])),
                rep(pred(is_ascii_digit), 2, 4),
                any("."),
            ])),
            rep(pred(is_ascii_digit), 2, 4),
            any("."),
            rep(pred(is_ascii_digit), 3, 4),
            any("."),
            rep(pred(is_ascii_digit), 3, 5),
        ]),
    ]);
    let hthing = seq(vec![
        ascii_alnum(),
        star(alt(vec![ascii_alnum(), any(".,\u{AD}")])),
        plus(seq(vec![
            any("-"),
            alt(vec![
                plus(alt(vec![ascii_alnum(), any("\u{AD}")])),
                seq(vec![acro2(), any(".")]),
            ]),
        ])),
    ]);
    let thinga = seq(vec![
        plus(upper_ascii()),
        plus(seq(vec![
            alt(vec![any("+&"), l("&amp;")]),
            plus(upper_ascii()),
        ])),
    ]);
    let quotes = alt(vec![
        apos(),
        l("''"),
        rep(
            any("`\u{2018}\u{2019}\u{201A}\u{201B}\u{201C}\u{201D}\u{91}\u{92}\u{93}\u{94}\u{201E}\u{201F}\u{2039}\u{203A}\u{AB}\u{BB}"),
            1,
            2,
        ),
    ]);
    let ldots = alt(vec![
        rep(any("."), 3, 5),
        seq(vec![
            rep(seq(vec![any("."), any(" \u{A0}")]), 2, 4),
            any("."),
        ]),
        any("\u{85}\u{2026}"),
    ]);
    let filename = seq(vec![
        plus(alnum_u()),
        star(seq(vec![any("."), plus(alnum_u())])),
        any("."),
        words(&[
            "bat", "bmp", "c", "class", "cgi", "cpp", "dll", "doc", "docx", "exe", "gif", "gz",
            "h", "htm", "html", "jar", "java", "jpeg", "jpg", "mov", "mp3", "pdf", "php", "pl",
            "png", "ppt", "ps", "py", "sql", "tar", "txt", "wav", "x", "xml", "zip",
        ]),
    ]);
    let period_like = alt(vec![
        any(".\u{A1}\u{BF}\u{37E}\u{589}\u{61F}\u{6D4}\u{7FA}\u{3002}"),
        ranges(&[(0x700, 0x702)]),
    ]);

    vec![
        rule(alt(vec![l("c++"), seq(vec![any("cCfF"), any("#")])]), keep),
        rule(words(&["cannot", "'twas"]), |t| push_back(t, 3)),
        rule(
            words(&["'tis", "gonna", "gotta", "lemme", "gimme", "wanna"]),
            |t| push_back(t, 2),
        ),
        rule(sgml(), nbsp_spaces),
        rule(
            alt(vec![
                seq(vec![any("&"), words(&["MD", "mdash", "ndash"]), any(";")]),
                any("\u{96}\u{97}\u{2013}\u{2014}\u{2015}"),
            ]),
            |_| Emit::Token("--".into()),
        ),
        rule(l("&amp;"), normalize_amp),
        rule(
            seq(vec![
                any("&"),
                alt(vec![
                    words(&["HT", "TL", "UR", "LR", "QC", "QL", "QR", "odq", "cdq"]),
                    seq(vec![any("#"), plus(pred(is_ascii_digit))]),
                ]),
                any(";"),
            ]),
            keep,
        ),
        rule_ctx(word(), redaux(), remove_soft_hyphens),
        rule_ctx(
            seq(vec![
                star(alt(vec![ascii_alpha(), any("\u{AD}")])),
                ranges(&[(0x41, 0x4D), (0x4F, 0x5A), (0x61, 0x6D), (0x6F, 0x7A)]),
                star(any("\u{AD}")),
            ]),
            sredaux(),
            remove_soft_hyphens,
        ),
        rule(word(), remove_soft_hyphens),
        rule(apoword, keep),
        rule_ctx(seq(vec![l("y"), apos()]), letter(), keep),
        rule(full_url, keep),
        rule(likely_url, keep),
        rule(email, keep),
        rule(twitter, keep),
        rule_ctx(redaux(), pred(|u| !is_ascii_alpha(u)), quote_right),
        rule(sredaux(), quote_right),
        rule(date, keep),
        rule(number(), remove_soft_hyphens),
        rule(subsupnum, keep),
        rule(frac, nbsp_spaces),
        rule(frac2, fractions),
        rule(tbspec, normalize_amp),
        rule(thing3, keep),
        rule(dolsign, keep),
        rule(dolsign2, currency),
        rule_ctx(
            seq(vec![acro(), any(".")]),
            seq(vec![
                plus(spacenl()),
                alt(vec![acronym_next, sgml()]),
                spacenl(),
            ]),
            acronym,
        ),
        rule_ctx(abbrev3(), seq(vec![opt(spacenl()), digit()]), keep),
        rule_ctx(
            seq(vec![
                alt(vec![seq(vec![l("pt"), any("eyEY")]), l("co")]),
                any("."),
            ]),
            seq(vec![space(), words(&["ltd", "lim"])]),
            keep,
        ),
        rule_ctx(abbrev1(), sentend(), dup_period),
        rule_ctx(abbrev1(), seq(vec![pred(|_| true), pred(|_| true)]), keep),
        rule(abbrev1(), dup_period),
        rule(seq(vec![abbrev4(), any(".")]), keep),
        rule_ctx(abbrev4(), space(), keep),
        rule_ctx(acro(), spacenl(), keep),
        rule_ctx(
            seq(vec![apos(), digit_ascii(), digit_ascii()]),
            spacenl(),
            keep,
        ),
        rule_ctx(filename, alt(vec![spacenl(), any(".?!,")]), keep),
        rule_ctx(seq(vec![word(), any(".")]), insentp(), remove_soft_hyphens),
        rule(phone, phone_normalize),
        rule_ctx(dblquot(), alt(vec![ascii_alnum(), any("$")]), quote_left),
        rule(dblquot(), quote_right),
        rule(any("\u{7F}"), skip),
        rule(alt(vec![any("<"), l("&lt;")]), |_| Emit::Token("<".into())),
        rule(alt(vec![any(">"), l("&gt;")]), |_| Emit::Token(">".into())),
        rule_ctx(smiley, not_ascii_alnum, parens),
        rule(asian, parens),
        rule(any("{"), |_| Emit::Token("-LCB-".into())),
        rule(any("}"), |_| Emit::Token("-RCB-".into())),
        rule(any("["), |_| Emit::Token("-LSB-".into())),
        rule(any("]"), |_| Emit::Token("-RSB-".into())),
        rule(any("("), |_| Emit::Token("-LRB-".into())),
        rule(any(")"), |_| Emit::Token("-RRB-".into())),
        rule(plus(any("-")), hyphens),
        rule(ldots, |_| Emit::Token("...".into())),
        rule(
            alt(vec![plus(any("@")), plus(any("#")), plus(any("_"))]),
            keep,
        ),
        rule(alt(vec![plus(any("*")), rep(l("\\*"), 1, 3)]), keep),
        rule(insentp(), keep),
        rule(plus(any("?!")), keep),
        rule(period_like, keep),
        rule(any("="), keep),
        rule(any("/"), keep),
        rule_ctx(
            seq(vec![hthing.clone(), any(".")]),
            insentp(),
            remove_soft_hyphens,
        ),
        rule(hthing, remove_soft_hyphens),
        rule_ctx(seq(vec![thing(), any(".")]), insentp(), keep),
        rule(thing(), keep),
        rule_ctx(
            seq(vec![thinga.clone(), any(".")]),
            insentp(),
            normalize_amp,
        ),
        rule(thinga, normalize_amp),
        rule_ctx(
            any("'"),
            seq(vec![ascii_alpha(), none(" \t\n\r\u{A0}")]),
            quote_left,
        ),
        rule(redaux(), quote_right),
        rule(quotes, quote_right),
        rule(alt(vec![l("<<"), l(">>")]), keep),
        rule(ranges(MISC_SYMBOLS), keep),
        rule(
            alt(vec![
                any("\u{0}"),
                plus(space()),
                any("\u{200B}\u{200E}\u{200F}\u{FEFF}"),
            ]),
            skip,
        ),
        rule(newline(), line_break),
        rule(l("&nbsp;"), skip),
        // Anything else is untokenizable and deleted (the default "firstDelete").
        rule(none("\n"), skip),
    ]
}
