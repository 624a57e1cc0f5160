//! Line charts drawn straight into an RGB buffer: axes with "nice" ticks, tick labels, a title
//! and one polyline per series. Our own ~200 lines instead of a plotting crate, because the
//! usual ones need fontconfig/freetype or a font file at run time for any text.

use super::text;
use image::{Rgb, RgbImage};

/// Chart width in pixels.
pub const WIDTH: u32 = 400;
/// Chart height in pixels.
pub const HEIGHT: u32 = 250;
/// Background colour.
pub const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
/// Series colours, in order (Tableau 10, distinguishable and colour-blind friendlier).
pub const PALETTE: [Rgb<u8>; 8] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
];
const INK: Rgb<u8> = Rgb([40, 40, 40]);
const GRID: Rgb<u8> = Rgb([228, 228, 228]);
/// Series with at most this many points get a marker on each point (periodic evaluations).
const MARKER_MAX_POINTS: usize = 40;

/// One series of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Points (x, y); non-finite ones are left out.
    pub points: Vec<(f64, f64)>,
    /// Stroke colour.
    pub color: Rgb<u8>,
}

/// A chart to draw.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot (the metric name).
    pub title: String,
    /// Name of the x axis (`step`).
    pub x_label: String,
    /// The series.
    pub lines: Vec<Line>,
}

/// Where data lands in the image: the plot area in pixels and the data range it spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Left edge of the plot area (pixels).
    pub left: f64,
    /// Right edge of the plot area.
    pub right: f64,
    /// Top edge of the plot area.
    pub top: f64,
    /// Bottom edge of the plot area.
    pub bottom: f64,
    /// Data x range shown (low, high).
    pub x: (f64, f64),
    /// Data y range shown (low, high).
    pub y: (f64, f64),
}

impl Frame {
    /// Pixel position of the data point (x, y).
    pub fn to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        (
            self.left + fx * (self.right - self.left),
            self.bottom - fy * (self.bottom - self.top),
        )
    }
}

/// One axis: its range rounded out to whole ticks, and the tick spacing.
#[derive(Debug, Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// Rounds `[lo, hi]` out to about five ticks of 1, 2 or 5 × 10^k; a single value gets a
    /// window around it.
    fn new(mut lo: f64, mut hi: f64) -> Axis {
        if hi <= lo {
            let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            lo -= d;
            hi += d;
        }
        let raw = (hi - lo) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = mag
            * match raw / mag {
                f if f <= 1.0 => 1.0,
                f if f <= 2.0 => 2.0,
                f if f <= 5.0 => 5.0,
                _ => 10.0,
            };
        // The nudges let a bound a rounding error off a tick count as on it.
        Axis {
            lo: (lo / step + 1e-9).floor() * step,
            hi: (hi / step - 1e-9).ceil() * step,
            step,
        }
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
    }

    /// Tick labels in one format for the whole axis: scientific for tiny or huge values
    /// (learning rates), else as many decimals as the spacing needs.
    fn labels(&self) -> Vec<String> {
        let big = self.lo.abs().max(self.hi.abs());
        let scientific = !(1e-2..1e6).contains(&big);
        let decimals = (-self.step.log10() - 1e-9).ceil().clamp(0.0, 6.0) as usize;
        // Mantissa digits: enough that neighbouring ticks differ (1.05e-3 beside 1.1e-3).
        let digits = (big.log10().floor() - self.step.log10().floor()).clamp(0.0, 6.0) as usize;
        self.ticks()
            .into_iter()
            .map(|v| {
                if v.abs() < self.step * 1e-6 {
                    "0".to_string()
                } else if scientific {
                    format!("{v:.digits$e}")
                } else {
                    format!("{v:.decimals$}")
                }
            })
            .collect()
    }
}

/// Draws `chart`; returns the image and where its data lies, so callers and tests can find the
/// pixel of any point.
pub fn render(chart: &Chart) -> (RgbImage, Frame) {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, BACKGROUND);
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let all: Vec<(f64, f64)> = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().filter(finite).copied())
        .collect();
    let (xs, ys): (Vec<f64>, Vec<f64>) = all.iter().copied().unzip();
    let range = |v: &[f64]| {
        v.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            })
    };
    let (x0, x1) = if xs.is_empty() {
        (0.0, 1.0)
    } else {
        range(&xs)
    };
    let (y0, y1) = if ys.is_empty() {
        (0.0, 1.0)
    } else {
        range(&ys)
    };
    let (xa, ya) = (Axis::new(x0, x1), Axis::new(y0, y1));
    let y_labels = ya.labels();
    let label_w = y_labels
        .iter()
        .map(|l| text::width(l, 1))
        .max()
        .unwrap_or(8);
    let frame = Frame {
        left: (label_w + 12) as f64,
        right: (WIDTH - 16) as f64,
        top: 24.0,
        bottom: (HEIGHT - 34) as f64,
        x: (xa.lo, xa.hi),
        y: (ya.lo, ya.hi),
    };

    // Grid and tick labels.
    for (v, label) in ya.ticks().into_iter().zip(&y_labels) {
        let (_, py) = frame.to_pixel(xa.lo, v);
        hline(&mut img, frame.left, frame.right, py, GRID);
        let w = text::width(label, 1) as f64;
        text::draw(
            &mut img,
            (frame.left - 6.0 - w) as i64,
            py as i64 - 4,
            label,
            INK,
            1,
        );
    }
    for (v, label) in xa.ticks().into_iter().zip(xa.labels()) {
        let (px, _) = frame.to_pixel(v, ya.lo);
        vline(&mut img, px, frame.top, frame.bottom, GRID);
        vline(&mut img, px, frame.bottom, frame.bottom + 4.0, INK);
        let w = text::width(&label, 1) as f64;
        text::draw(
            &mut img,
            (px - w / 2.0) as i64,
            frame.bottom as i64 + 7,
            &label,
            INK,
            1,
        );
    }
    // Axes, title, x-axis name.
    hline(&mut img, frame.left, frame.right, frame.bottom, INK);
    vline(&mut img, frame.left, frame.top, frame.bottom, INK);
    let title = clip_text(&chart.title, WIDTH - 8);
    let tw = text::width(&title, 1) as i64;
    text::draw(&mut img, (WIDTH as i64 - tw) / 2, 8, &title, INK, 1);
    let xw = text::width(&chart.x_label, 1) as i64;
    text::draw(
        &mut img,
        ((frame.left + frame.right) / 2.0) as i64 - xw / 2,
        HEIGHT as i64 - 12,
        &chart.x_label,
        INK,
        1,
    );
    if all.is_empty() {
        text::draw(&mut img, frame.left as i64 + 8, 40, "no data", INK, 1);
    }

    // The series, drawn last so they sit on top of the grid.
    for line in &chart.lines {
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter(finite)
            .map(|&(x, y)| frame.to_pixel(x, y))
            .collect();
        for w in pts.windows(2) {
            segment(&mut img, w[0], w[1], line.color);
        }
        if pts.len() <= MARKER_MAX_POINTS {
            for &(px, py) in &pts {
                for dy in -2..=2 {
                    for dx in -2..=2 {
                        text::put(&mut img, px as i64 + dx, py as i64 + dy, line.color);
                    }
                }
            }
        }
    }
    (img, frame)
}

/// `s`, shortened with `..` to fit `max_px` pixels of 8-pixel glyphs.
fn clip_text(s: &str, max_px: u32) -> String {
    let max = (max_px / text::CELL) as usize;
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep: String = s.chars().take(max.saturating_sub(2)).collect();
    format!("{keep}..")
}

fn hline(img: &mut RgbImage, x0: f64, x1: f64, y: f64, c: Rgb<u8>) {
    for x in x0.round() as i64..=x1.round() as i64 {
        text::put(img, x, y.round() as i64, c);
    }
}

fn vline(img: &mut RgbImage, x: f64, y0: f64, y1: f64, c: Rgb<u8>) {
    for y in y0.round() as i64..=y1.round() as i64 {
        text::put(img, x.round() as i64, y, c);
    }
}

/// A 2-pixel-wide straight segment (Bresenham with a 2×2 pen).
fn segment(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: Rgb<u8>) {
    let (mut x, mut y) = (a.0.round() as i64, a.1.round() as i64);
    let (x1, y1) = (b.0.round() as i64, b.1.round() as i64);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = ((x1 - x).signum(), (y1 - y).signum());
    let mut err = dx + dy;
    loop {
        for (ox, oy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            text::put(img, x + ox, y + oy, c);
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_colour_near(img: &RgbImage, (px, py): (f64, f64), c: Rgb<u8>) -> bool {
        (-1..=1).any(|dy| {
            (-1..=1).any(|dx| {
                let (x, y) = (px as i64 + dx, py as i64 + dy);
                x >= 0 && y >= 0 && *img.get_pixel(x as u32, y as u32) == c
            })
        })
    }

    #[test]
    fn curve_lands_where_the_frame_says_and_the_png_decodes() {
        // 100 points: a line without markers, falling from 5 to 2.03.
        let points: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64 * 10.0, 5.0 - 0.03 * i as f64))
            .collect();
        let chart = Chart {
            title: "train/loss".into(),
            x_label: "step".into(),
            lines: vec![Line {
                points: points.clone(),
                color: PALETTE[0],
            }],
        };
        let (img, frame) = render(&chart);
        let png = super::super::embed::png_bytes(&img).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (WIDTH, HEIGHT));
        for &(x, y) in &points[5..95] {
            assert!(
                has_colour_near(&back, frame.to_pixel(x, y), PALETTE[0]),
                "no curve pixel at ({x}, {y}) → {:?}",
                frame.to_pixel(x, y)
            );
        }
        // Well above the curve: background or grid, never the curve colour.
        assert!(!has_colour_near(
            &back,
            frame.to_pixel(500.0, 4.9),
            PALETTE[0]
        ));
        // The axis range covers the data and the title has ink in the top band.
        assert!(frame.y.0 <= 2.03 && frame.y.1 >= 5.0 && frame.x.1 >= 990.0);
        let title_ink = (0..WIDTH)
            .flat_map(|x| (6..18).map(move |y| (x, y)))
            .filter(|&(x, y)| *back.get_pixel(x, y) == INK)
            .count();
        assert!(title_ink > 20, "title pixels: {title_ink}");
    }

    #[test]
    fn single_point_gets_a_marker_and_constant_series_a_range() {
        let chart = Chart {
            title: "eval/i2t_r@1".into(),
            x_label: "step".into(),
            lines: vec![Line {
                points: vec![(500.0, 0.25)],
                color: PALETTE[1],
            }],
        };
        let (img, frame) = render(&chart);
        assert!(frame.y.0 < 0.25 && frame.y.1 > 0.25 && frame.x.0 < 500.0);
        let (px, py) = frame.to_pixel(500.0, 0.25);
        assert_eq!(*img.get_pixel(px as u32 + 2, py as u32), PALETTE[1]);
    }

    #[test]
    fn ticks_are_round_and_labels_fit_the_scale() {
        let a = Axis::new(0.0, 2e-3);
        assert_eq!(a.labels().first().map(String::as_str), Some("0"));
        assert!(
            a.labels().contains(&"1.0e-3".to_string()),
            "{:?}",
            a.labels()
        );
        let b = Axis::new(25.0, 2500.0);
        assert_eq!(b.lo, 0.0);
        assert_eq!(b.labels().last().map(String::as_str), Some("2500"));
        // A constant learning rate: a ±10% window whose ticks must still read differently.
        let lr = Axis::new(1e-3, 1e-3);
        assert_eq!(
            lr.labels(),
            ["9.00e-4", "9.50e-4", "1.00e-3", "1.05e-3", "1.10e-3"]
        );
        let c = Axis::new(0.3, 0.9);
        assert_eq!(c.labels(), ["0.2", "0.4", "0.6", "0.8", "1.0"]);
    }
}
