//! Named model sizes: the ViT variants of big_vision and text towers of matching width.

/// Width, depth, MLP size and heads of one transformer size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Hidden size.
    pub width: usize,
    /// Number of blocks.
    pub depth: usize,
    /// MLP hidden size.
    pub mlp: usize,
    /// Attention heads.
    pub heads: usize,
}

/// Transformer sizes by name (big_vision's `decode_variant`), plus small test sizes.
pub const SIZES: &[(&str, Size)] = &[
    (
        "mu",
        Size {
            width: 32,
            depth: 1,
            mlp: 64,
            heads: 2,
        },
    ),
    (
        "tiny",
        Size {
            width: 64,
            depth: 2,
            mlp: 256,
            heads: 4,
        },
    ),
    (
        "small",
        Size {
            width: 128,
            depth: 4,
            mlp: 512,
            heads: 4,
        },
    ),
    (
        "Ti",
        Size {
            width: 192,
            depth: 12,
            mlp: 768,
            heads: 3,
        },
    ),
    (
        "S",
        Size {
            width: 384,
            depth: 12,
            mlp: 1536,
            heads: 6,
        },
    ),
    (
        "B",
        Size {
            width: 768,
            depth: 12,
            mlp: 3072,
            heads: 12,
        },
    ),
    (
        "L",
        Size {
            width: 1024,
            depth: 24,
            mlp: 4096,
            heads: 16,
        },
    ),
    (
        "So400m",
        Size {
            width: 1152,
            depth: 27,
            mlp: 4304,
            heads: 16,
        },
    ),
    (
        "H",
        Size {
            width: 1280,
            depth: 32,
            mlp: 5120,
            heads: 16,
        },
    ),
    (
        "g",
        Size {
            width: 1408,
            depth: 40,
            mlp: 6144,
            heads: 16,
        },
    ),
    (
        "G",
        Size {
            width: 1664,
            depth: 48,
            mlp: 8192,
            heads: 16,
        },
    ),
    (
        "e",
        Size {
            width: 1792,
            depth: 56,
            mlp: 15360,
            heads: 16,
        },
    ),
];

/// A vision preset name is `SIZE` or `SIZE/PATCH` (e.g. `B/16`, `So400m/14`, `tiny`).
pub fn parse_vision(name: &str) -> Option<(Size, Option<usize>)> {
    let (size, patch) = match name.split_once('/') {
        Some((s, p)) => (s, Some(p.parse().ok()?)),
        None => (name, None),
    };
    Some((lookup(size)?, patch))
}

/// The size called `name`.
pub fn lookup(name: &str) -> Option<Size> {
    SIZES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// All preset names, for error messages.
pub fn names() -> String {
    SIZES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paper_variants() {
        let (s, p) = parse_vision("So400m/14").unwrap();
        assert_eq!((s.width, s.depth, s.mlp, p), (1152, 27, 4304, Some(14)));
        let (g, p) = parse_vision("G/14").unwrap();
        assert_eq!((g.width, g.depth, p), (1664, 48, Some(14)));
        assert!(parse_vision("Q/16").is_none());
        assert!(parse_vision("B/x").is_none());
    }
}
