//! Measures scaled JPEG decoding on real shards: time per image of each step (full decode with
//! the image crate and with libjpeg-turbo, scaled decode, resize, normalise) and how far the
//! model input from a scaled decode is from the one of a full decode, in 0..255 levels.
//!
//! Usage: cargo run --release -p palisade-data --example jpeg_scaling -- [--size 224] SHARD...

use std::time::Instant;

use palisade_data::image_ops::{decode_rgb, to_model_input};
use palisade_data::jpeg::{decode_scaled, decode_scaled_among, SCALES};
use palisade_data::ShardInfo;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut size = 224usize;
    if let Some(i) = args.iter().position(|a| a == "--size") {
        size = args[i + 1].parse().expect("--size N");
        args.drain(i..i + 2);
    }
    let mut images: Vec<Vec<u8>> = Vec::new();
    for path in &args {
        let info = ShardInfo::open(std::path::Path::new(path)).expect("a Parquet shard");
        for rg in 0..info.row_groups().len() {
            let b = info
                .read_row_group(rg, &["image"])
                .expect("an image column");
            let col = b.column(0);
            let bin = col
                .as_any()
                .downcast_ref::<arrow::array::BinaryArray>()
                .expect("binary images");
            images.extend(bin.iter().flatten().map(<[u8]>::to_vec));
        }
    }
    let n = images.len() as f64;
    let time = |name: &str, f: &mut dyn FnMut(&[u8])| {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            for b in &images {
                f(b);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{name:<44} {:7.3} ms/image", 1e3 * best / n);
    };
    let mut out = vec![0f32; 3 * size * size];
    println!("{} images, model input {size}×{size}", images.len());
    time("decode, image crate (zune-jpeg)", &mut |b| {
        decode_rgb(b).unwrap();
    });
    time("decode, libjpeg-turbo full size", &mut |b| {
        decode_scaled(b, 0).unwrap();
    });
    time("decode, libjpeg-turbo scaled", &mut |b| {
        decode_scaled(b, size as u32).unwrap();
    });
    time("decode, libjpeg-turbo any M/8", &mut |b| {
        decode_scaled_among(b, size as u32, 0xff).unwrap();
    });
    time("decode (zune) + resize + normalise", &mut |b| {
        to_model_input(&decode_rgb(b).unwrap(), size, &mut out)
    });
    time("decode (libjpeg full) + resize + normalise", &mut |b| {
        to_model_input(&decode_scaled(b, 0).unwrap().0, size, &mut out)
    });
    time("decode (libjpeg scaled) + resize + normalise", &mut |b| {
        to_model_input(&decode_scaled(b, size as u32).unwrap().0, size, &mut out)
    });
    // Difference of the model inputs, in 0..255 levels (1 level = 2/255 in [-1, 1]).
    let mut full = vec![0f32; 3 * size * size];
    for (name, scales) in [("power-of-two scales (used)", SCALES), ("any M/8", 0xff)] {
        let (mut sum, mut count, mut worst) = (0f64, 0usize, 0f64);
        let (mut scaled_sum, mut scaled_count, mut worst_image) = (0f64, 0usize, 0f64);
        let mut chosen = [0usize; 9];
        for b in &images {
            to_model_input(&decode_rgb(b).unwrap(), size, &mut full);
            let (img, m) = decode_scaled_among(b, size as u32, scales).unwrap();
            chosen[m as usize] += 1;
            to_model_input(&img, size, &mut out);
            let s: f64 = full
                .iter()
                .zip(&out)
                .map(|(a, c)| f64::from((a - c).abs()) * 127.5)
                .sum();
            worst = full
                .iter()
                .zip(&out)
                .map(|(a, c)| f64::from((a - c).abs()) * 127.5)
                .fold(worst, f64::max);
            sum += s;
            count += full.len();
            if m < 8 {
                scaled_sum += s;
                scaled_count += full.len();
                worst_image = worst_image.max(s / full.len() as f64);
            }
        }
        println!(
            "{name}: M/8 chosen for M = 1..8: {:?}; vs full decode (zune) + resize: mean |Δ| {:.2} levels over all images, {:.2} over the {} decoded scaled (worst image {:.2}), largest single value {:.0}",
            &chosen[1..],
            sum / count as f64,
            scaled_sum / scaled_count.max(1) as f64,
            scaled_count / full.len(),
            worst_image,
            worst
        );
    }
    let (mut sum, mut count) = (0f64, 0usize);
    for b in &images {
        to_model_input(&decode_rgb(b).unwrap(), size, &mut full);
        to_model_input(&decode_scaled(b, 0).unwrap().0, size, &mut out);
        sum += full
            .iter()
            .zip(&out)
            .map(|(a, c)| f64::from((a - c).abs()) * 127.5)
            .sum::<f64>();
        count += full.len();
    }
    println!(
        "for scale: libjpeg full size vs zune full size, both resized: mean |Δ| {:.2} levels",
        sum / count as f64
    );
}
