//! Random scene layout and captions.

use rand::seq::SliceRandom;
use rand::Rng;

/// Shape class names, in label order.
pub const SHAPES: &[&str] = &["circle", "square", "triangle", "cross"];
/// Colour class names, in label order.
pub const COLORS: &[&str] = &["red", "green", "blue", "yellow", "purple", "white"];
/// Size words.
pub const SIZES: &[&str] = &["small", "large"];
/// Cells of the 3×3 layout grid, row-major.
pub const POSITIONS: &[&str] = &[
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
];

/// How each position is said in a caption.
const POSITION_PHRASES: &[&str] = &[
    "at the top left",
    "at the top",
    "at the top right",
    "on the left",
    "in the center",
    "on the right",
    "at the bottom left",
    "at the bottom",
    "at the bottom right",
];

/// Openings a caption may start with.
const PREFIXES: &[&str] = &[
    "",
    "a picture of ",
    "there is ",
    "an image of ",
    "a photo of ",
    "this shows ",
];

/// Object side length as a fraction of the image side, for small and large.
const SIDE_FRACTION: [f32; 2] = [0.17, 0.30];

/// One drawn object: indices into the class lists plus its box in pixels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SceneObject {
    pub shape: usize,
    pub color: usize,
    pub large: bool,
    pub cell: usize,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl SceneObject {
    pub fn shape_name(&self) -> &'static str {
        SHAPES[self.shape]
    }

    pub fn color_name(&self) -> &'static str {
        COLORS[self.color]
    }

    pub fn size_name(&self) -> &'static str {
        SIZES[usize::from(self.large)]
    }

    pub fn position_name(&self) -> &'static str {
        POSITIONS[self.cell]
    }
}

/// A scene: objects largest first, and its caption.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scene {
    pub objects: Vec<SceneObject>,
    pub caption: String,
}

/// Lays out 1..=`max_objects` objects in distinct grid cells of a `size`-pixel image.
pub(crate) fn random_scene(rng: &mut impl Rng, size: u32, max_objects: usize) -> Scene {
    // Integer cell bounds; every object lies inside its own cell, so objects never overlap.
    let bounds: Vec<(u32, u32)> = (0..3)
        .map(|i| ((i * size + 1) / 3, ((i + 1) * size + 1) / 3))
        .collect();
    let min_cell = bounds.iter().map(|(lo, hi)| hi - lo).min().unwrap_or(0);
    let count = rng.random_range(1..=max_objects.clamp(1, POSITIONS.len()));
    let mut cells: Vec<usize> = (0..POSITIONS.len()).collect();
    cells.shuffle(rng);
    let mut objects: Vec<SceneObject> = Vec::with_capacity(count);
    for &cell in &cells[..count] {
        // Distinct (shape, colour) pairs keep captions unambiguous.
        let (shape, color) = loop {
            let pair = (
                rng.random_range(0..SHAPES.len()),
                rng.random_range(0..COLORS.len()),
            );
            if !objects.iter().any(|o| (o.shape, o.color) == pair) {
                break pair;
            }
        };
        let large = rng.random_bool(0.5);
        let w = ((SIDE_FRACTION[usize::from(large)] * size as f32).round() as u32)
            .clamp(1, min_cell.max(1));
        let mut place = |(lo, hi): (u32, u32)| rng.random_range(lo..=hi.saturating_sub(w).max(lo));
        let x = place(bounds[cell % 3]);
        let y = place(bounds[cell / 3]);
        objects.push(SceneObject {
            shape,
            color,
            large,
            cell,
            x: x as f32,
            y: y as f32,
            w: w as f32,
            h: w as f32,
        });
    }
    // Largest first (stable), so the first object is the primary label.
    objects.sort_by_key(|o| !o.large);
    let caption = caption(rng, &objects);
    Scene { objects, caption }
}

/// A caption naming every object's colour and shape, and depending on the template its
/// size and position.
fn caption(rng: &mut impl Rng, objects: &[SceneObject]) -> String {
    let with_size = rng.random_bool(0.5);
    let with_position = rng.random_bool(0.5);
    let prefix = PREFIXES[rng.random_range(0..PREFIXES.len())];
    caption_with(objects, prefix, with_size, with_position)
}

/// Every caption the generator could write for a scene of `objects` (any opening, with or
/// without sizes, with or without positions): the captions that fit it.
pub(crate) fn fitting_captions(objects: &[SceneObject]) -> Vec<String> {
    let mut out = Vec::with_capacity(PREFIXES.len() * 4);
    for prefix in PREFIXES {
        for (with_size, with_position) in
            [(false, false), (false, true), (true, false), (true, true)]
        {
            out.push(caption_with(objects, prefix, with_size, with_position));
        }
    }
    out
}

fn caption_with(
    objects: &[SceneObject],
    prefix: &str,
    with_size: bool,
    with_position: bool,
) -> String {
    let phrases: Vec<String> = objects
        .iter()
        .map(|o| {
            let mut words = Vec::with_capacity(5);
            if with_size {
                words.push(o.size_name());
            }
            words.push(o.color_name());
            words.push(o.shape_name());
            if with_position {
                words.push(POSITION_PHRASES[o.cell]);
            }
            format!("{} {}", article(words[0]), words.join(" "))
        })
        .collect();
    let listed = match phrases.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    };
    format!("{prefix}{listed}")
}

/// "a" or "an" before `word`.
pub(super) fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn scenes(n: usize, size: u32, max: usize) -> Vec<Scene> {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        (0..n).map(|_| random_scene(&mut rng, size, max)).collect()
    }

    #[test]
    fn captions_mention_every_object() {
        for scene in scenes(200, 64, 3) {
            for o in &scene.objects {
                let phrase = format!("{} {}", o.color_name(), o.shape_name());
                assert!(scene.caption.contains(&phrase), "{:?}", scene);
            }
        }
    }

    #[test]
    fn every_caption_is_among_its_scenes_fitting_captions() {
        for scene in scenes(200, 64, 3) {
            let fits = fitting_captions(&scene.objects);
            assert_eq!(fits.len(), 24);
            assert!(fits.contains(&scene.caption), "{scene:?}");
        }
    }

    #[test]
    fn captions_vary_in_template() {
        let all = scenes(200, 64, 2);
        let with_pos = all.iter().filter(|s| s.caption.contains(" the ")).count();
        let with_size = all
            .iter()
            .filter(|s| s.caption.contains("small") || s.caption.contains("large"))
            .count();
        let prefixed = all
            .iter()
            .filter(|s| s.caption.starts_with("there is"))
            .count();
        assert!(with_pos > 50 && with_pos < 150, "{with_pos}");
        assert!(with_size > 50 && with_size < 150, "{with_size}");
        assert!(prefixed > 5, "{prefixed}");
    }

    #[test]
    fn objects_fit_do_not_overlap_and_come_largest_first() {
        for scene in scenes(300, 64, 4) {
            let objs = &scene.objects;
            assert!((1..=4).contains(&objs.len()));
            assert!(objs.windows(2).all(|w| w[0].large >= w[1].large));
            for (i, a) in objs.iter().enumerate() {
                assert!(a.x >= 0.0 && a.y >= 0.0 && a.x + a.w <= 64.0 && a.y + a.h <= 64.0);
                for b in &objs[i + 1..] {
                    let apart = a.x + a.w <= b.x
                        || b.x + b.w <= a.x
                        || a.y + a.h <= b.y
                        || b.y + b.h <= a.y;
                    assert!(apart, "{a:?} overlaps {b:?}");
                    assert_ne!(a.cell, b.cell);
                }
            }
        }
    }

    #[test]
    fn position_matches_box_centre() {
        for scene in scenes(100, 64, 2) {
            for o in &scene.objects {
                let col = ((o.x + o.w / 2.0) / (64.0 / 3.0)) as usize;
                let row = ((o.y + o.h / 2.0) / (64.0 / 3.0)) as usize;
                assert_eq!(row * 3 + col, o.cell, "{o:?}");
            }
        }
    }

    #[test]
    fn article_before_vowel() {
        assert_eq!(article("orange"), "an");
        assert_eq!(article("red"), "a");
    }
}
