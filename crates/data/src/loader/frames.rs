//! Which frames of a video clip become a sample's frames.
//!
//! A sample has exactly `max` frames so that a batch is one `[B, F, 3, S, S]` tensor. A clip with
//! more frames is read at a fixed stride — the largest whole stride that still fits `max`
//! frames, `(n − 1) / (max − 1)` — with the run of frames centred in the clip; a clip with
//! `max` or fewer frames gives all of them, and the loader repeats its last frame to fill the
//! sample.

/// Most frames per clip when a video loader is not told otherwise (PaLI-3 uses up to 16).
pub const DEFAULT_MAX_FRAMES: usize = 16;

/// Indices (ascending) of the frames used from a clip of `n` frames, at most `max` of them.
pub(crate) fn select_frames(n: usize, max: usize) -> Vec<usize> {
    if n == 0 || max == 0 {
        return Vec::new();
    }
    if n <= max {
        return (0..n).collect();
    }
    if max == 1 {
        return vec![(n - 1) / 2];
    }
    let stride = (n - 1) / (max - 1);
    let span = (max - 1) * stride + 1;
    let offset = (n - span) / 2;
    (0..max).map(|k| offset + k * stride).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_clips_use_the_widest_fixed_stride_centred() {
        // 32 frames into 16: stride 2 covers 31 of them, starting at 0.
        let s = select_frames(32, 16);
        assert_eq!(s.len(), 16);
        assert!(s.windows(2).all(|w| w[1] - w[0] == 2), "{s:?}");
        assert_eq!((s[0], s[15]), (0, 30));
        // 100 into 8: stride 14 spans 99 frames, centred (offset 0 of the 1 spare).
        let s = select_frames(100, 8);
        assert_eq!(s, (0..8).map(|k| k * 14).collect::<Vec<_>>());
        // 20 into 4: stride 6, span 19, one spare frame: offset 0; 21 into 4: span 19, offset 1.
        assert_eq!(select_frames(20, 4), [0, 6, 12, 18]);
        assert_eq!(select_frames(21, 4), [1, 7, 13, 19]);
        // Just over the cap: stride 1, the middle run.
        assert_eq!(select_frames(18, 16), (1..17).collect::<Vec<_>>());
    }

    #[test]
    fn short_clips_give_every_frame_and_the_cap_holds() {
        assert_eq!(select_frames(5, 16), [0, 1, 2, 3, 4]);
        assert_eq!(select_frames(16, 16), (0..16).collect::<Vec<_>>());
        assert_eq!(select_frames(9, 1), [4], "one frame: the middle one");
        assert!(select_frames(0, 16).is_empty());
        for n in 1..80 {
            for max in 1..20 {
                let s = select_frames(n, max);
                assert_eq!(s.len(), n.min(max), "n {n} max {max}");
                assert!(s.iter().all(|&i| i < n));
                assert!(s.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
