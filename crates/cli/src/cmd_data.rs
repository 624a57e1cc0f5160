//! `palisade data`.

use anyhow::Result;
use palisade_data::convert::Conversion;
use palisade_data::inspect::inspect_patterns;
use palisade_data::synth::Generation;

/// Data subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Generate synthetic data.
    #[command(subcommand)]
    Synth(Generation),
    /// Convert public datasets (COCO captions, VQAv2, RefCOCO, webdataset, JSON lines) to shards.
    #[command(subcommand)]
    Convert(Conversion),
    /// Check shards against a data spec and summarise them (rows, columns, samples, bad rows).
    Inspect {
        /// Parquet files or globs.
        #[arg(required = true)]
        shards: Vec<String>,
        /// Spec name (webli, shapes, caption, vqa, refcoco, video) or a YAML path; default: the
        /// built-in spec the first shard fits best.
        #[arg(long)]
        spec: Option<String>,
        /// The shards' names for the spec's columns: `image=jpg,text=caption`.
        #[arg(long, value_parser = parse_columns, default_value = "")]
        columns: std::collections::BTreeMap<String, String>,
        /// Sample rows to show.
        #[arg(long, default_value_t = 3)]
        samples: usize,
        /// Bad rows to list.
        #[arg(long, default_value_t = 20)]
        max_bad: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Exit non-zero when any bad row is found.
        #[arg(long)]
        strict: bool,
    },
}

/// Runs a data subcommand and prints what it did.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Synth(g) => println!("{}", g.run()?),
        Command::Convert(c) => {
            let (spec, summary) = c.run()?;
            println!("{}", summary.describe(spec, c.out_dir()));
        }
        Command::Inspect {
            shards,
            spec,
            columns,
            samples,
            max_bad,
            json,
            strict,
        } => {
            let report = inspect_patterns(&shards, spec.as_deref(), &columns, samples, max_bad)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            anyhow::ensure!(
                !(strict && report.bad_count > 0),
                "{} bad rows (--strict)",
                report.bad_count
            );
        }
    }
    Ok(())
}

/// `image=jpg,text=caption` → {image: jpg, text: caption}.
fn parse_columns(s: &str) -> Result<std::collections::BTreeMap<String, String>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (role, column) = pair.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--columns {pair:?}: expected SPEC_COLUMN=FILE_COLUMN")
            })?;
            anyhow::ensure!(
                !role.trim().is_empty() && !column.trim().is_empty(),
                "--columns {pair:?}: both names are needed"
            );
            Ok((role.trim().to_string(), column.trim().to_string()))
        })
        .collect()
}
