//! HTML and Markdown building blocks shared by the run page and the sweep comparison: escaping,
//! tables, figures and the page shell with its inline style sheet.

/// Inline CSS: the page must render the same from a mail attachment or an artifact store, so
/// nothing is fetched.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5rem 0}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.grid{display:flex;flex-wrap:wrap;gap:.75rem}figure{margin:0}\
figcaption{font-size:.8rem;color:#555}\
.thumb{image-rendering:pixelated}.muted{color:#777}\
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}\
pre{background:#f7f7f7;padding:.5rem;overflow:auto;font-size:.8rem}";

/// `s` with `& < > " '` replaced by entities: safe as element text and in quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One table cell: already-safe HTML, and whether it holds a number (right-aligned).
#[derive(Debug, Clone)]
pub struct Cell {
    /// The cell's HTML.
    pub html: String,
    /// Right-align (numbers).
    pub numeric: bool,
}

impl Cell {
    /// A text cell (escaped here).
    pub fn text(s: &str) -> Cell {
        Cell {
            html: escape(s),
            numeric: false,
        }
    }

    /// A number cell (escaped, right-aligned).
    pub fn num(s: &str) -> Cell {
        Cell {
            html: escape(s),
            numeric: true,
        }
    }

    /// A cell of trusted HTML built by this module's callers from escaped parts.
    pub fn html(html: String) -> Cell {
        Cell {
            html,
            numeric: false,
        }
    }
}

/// A `<table id=…>` with a header row of (escaped) `head` and the given rows.
pub fn table(id: &str, head: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut t = format!("<table id=\"{}\">\n<thead><tr>", escape(id));
    for h in head {
        t += &format!("<th>{}</th>", escape(h));
    }
    t += "</tr></thead>\n<tbody>\n";
    for row in rows {
        t += "<tr>";
        for c in row {
            let class = if c.numeric { " class=\"num\"" } else { "" };
            t += &format!("<td{class}>{}</td>", c.html);
        }
        t += "</tr>\n";
    }
    t + "</tbody></table>\n"
}

/// A figure: an embedded PNG with a caption.
pub fn figure(data_uri: &str, alt: &str, caption: &str, class: &str) -> String {
    format!(
        "<figure><img class=\"{}\" src=\"{data_uri}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
        escape(class),
        escape(alt),
        escape(caption)
    )
}

/// The whole document around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_text_and_attributes() {
        assert_eq!(
            escape("<img src=x onerror='a&b'>\""),
            "&lt;img src=x onerror=&#39;a&amp;b&#39;&gt;&quot;"
        );
        let t = table(
            "t",
            &["a<b"],
            &[vec![Cell::text("<script>"), Cell::num("1")]],
        );
        assert!(t.contains("<th>a&lt;b</th>"), "{t}");
        assert!(
            t.contains("<td>&lt;script&gt;</td><td class=\"num\">1</td>"),
            "{t}"
        );
        assert!(!t.contains("<script>"));
    }
}
