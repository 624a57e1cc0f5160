//! Deterministic visiting order: which units a rank reads in an epoch, and in what row order.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a loader has handed out: everything before (`unit`, `row`) of `epoch`'s visiting order,
/// and with a shuffle buffer the first `shuffled.taken` rows the buffer drew after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Epoch number, from 0.
    pub epoch: u64,
    /// Position in this rank's list of units (or of `plan`'s spans) for the epoch.
    pub unit: usize,
    /// Position in the unit's row order.
    pub row: usize,
    /// After a change of world size (or of shuffle buffer): this rank's rows for the rest of
    /// `epoch` as spans of units' row orders; `unit` then indexes this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<Span>>,
    /// With a shuffle buffer: how many rows it has handed out since (`unit`, `row`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffled: Option<Shuffled>,
}

impl Cursor {
    /// The start of `epoch`'s normal plan.
    pub fn epoch_start(epoch: u64) -> Cursor {
        Cursor {
            epoch,
            ..Cursor::default()
        }
    }

    /// The same position without the shuffle buffer's part: where its stream began.
    pub(crate) fn base(&self) -> Cursor {
        Cursor {
            shuffled: None,
            ..self.clone()
        }
    }

    /// Rows the shuffle buffer has handed out since the base position.
    #[cfg(test)]
    pub(crate) fn taken(&self) -> usize {
        self.shuffled.as_ref().map_or(0, |s| s.taken)
    }
}

/// The shuffle buffer's part of a [`Cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shuffled {
    /// The buffer's size in rows when the position was saved.
    pub buffer: usize,
    /// Rows it had handed out since the cursor's (`unit`, `row`).
    pub taken: usize,
}

/// Rows `start..end` of global unit `unit`'s row order in an epoch (`end` None: to its last
/// row). Saved as `[unit, start]` or `[unit, start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<usize>", try_from = "Vec<usize>")]
pub struct Span {
    /// Global unit id.
    pub unit: usize,
    /// First position in the unit's row order.
    pub start: usize,
    /// One past the last position, when not the unit's end.
    pub end: Option<usize>,
}

impl Span {
    /// A whole unit.
    pub(crate) fn whole(unit: usize) -> Span {
        Span {
            unit,
            start: 0,
            end: None,
        }
    }

    /// One past the last position, given the unit's row count.
    pub(crate) fn end_in(&self, rows: usize) -> usize {
        self.end.map_or(rows, |e| e.min(rows))
    }
}

impl From<Span> for Vec<usize> {
    fn from(s: Span) -> Vec<usize> {
        match s.end {
            Some(e) => vec![s.unit, s.start, e],
            None => vec![s.unit, s.start],
        }
    }
}

impl TryFrom<Vec<usize>> for Span {
    type Error = String;

    fn try_from(v: Vec<usize>) -> Result<Span, String> {
        match v[..] {
            [unit, start] => Ok(Span {
                unit,
                start,
                end: None,
            }),
            [unit, start, end] => Ok(Span {
                unit,
                start,
                end: Some(end),
            }),
            _ => Err(format!(
                "a plan span is [unit, start] or [unit, start, end], not {v:?}"
            )),
        }
    }
}

/// Separates the RNG streams of unit and row shuffles that share a seed.
const UNIT_DOMAIN: u64 = 0x756e_6974; // "unit"
const ROW_DOMAIN: u64 = 0x726f_7773; // "rows"
const BUFFER_DOMAIN: u64 = 0x7368_7566; // "shuf"

/// An RNG determined by its four inputs alone.
fn rng(domain: u64, seed: u64, epoch: u64, unit: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, word) in key.chunks_exact_mut(8).zip([domain, seed, epoch, unit]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The shuffle buffer's draws in `epoch`: one stream, drawn in order.
pub(crate) fn buffer_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    rng(BUFFER_DOMAIN, seed, epoch, 0)
}

/// How many of `n_units` units rank `rank` of `world` gets each epoch.
pub(crate) fn units_per_rank(n_units: usize, rank: usize, world: usize) -> usize {
    if rank >= n_units {
        0
    } else {
        (n_units - rank).div_ceil(world)
    }
}

/// Global unit ids that `rank` visits in `epoch`, in visiting order.
///
/// All units are permuted from (seed, epoch) when shuffling; the rank takes every
/// `world`-th entry starting at `rank`.
pub(crate) fn rank_units(
    n_units: usize,
    seed: u64,
    epoch: u64,
    shuffle: bool,
    rank: usize,
    world: usize,
) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n_units).collect();
    if shuffle {
        all.shuffle(&mut rng(UNIT_DOMAIN, seed, epoch, 0));
    }
    all.into_iter().skip(rank).step_by(world.max(1)).collect()
}

/// Order in which the rows of global unit `unit` are read in `epoch`.
pub(crate) fn row_order(
    rows: usize,
    seed: u64,
    epoch: u64,
    unit: usize,
    shuffle: bool,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    if shuffle {
        order.shuffle(&mut rng(ROW_DOMAIN, seed, epoch, unit as u64));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_partition_units_every_epoch() {
        for world in 1..5 {
            for epoch in 0..3 {
                let mut seen: Vec<usize> = (0..world)
                    .flat_map(|r| rank_units(11, 7, epoch, true, r, world))
                    .collect();
                seen.sort();
                assert_eq!(seen, (0..11).collect::<Vec<_>>());
                for r in 0..world {
                    assert_eq!(
                        rank_units(11, 7, epoch, true, r, world).len(),
                        units_per_rank(11, r, world)
                    );
                }
            }
        }
        assert_eq!(units_per_rank(2, 3, 4), 0);
    }

    #[test]
    fn shuffle_depends_on_epoch_and_seed_only() {
        let a = rank_units(50, 1, 0, true, 0, 1);
        assert_eq!(a, rank_units(50, 1, 0, true, 0, 1));
        assert_ne!(a, rank_units(50, 1, 1, true, 0, 1));
        assert_ne!(a, rank_units(50, 2, 0, true, 0, 1));
        assert_eq!(rank_units(5, 1, 3, false, 1, 2), vec![1, 3]);
    }

    #[test]
    fn row_order_is_a_permutation_varying_by_unit() {
        let a = row_order(30, 4, 0, 0, true);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..30).collect::<Vec<_>>());
        assert_ne!(a, row_order(30, 4, 0, 1, true));
        assert_ne!(a, row_order(30, 4, 1, 0, true));
        assert_eq!(row_order(4, 4, 0, 0, false), vec![0, 1, 2, 3]);
    }

    #[test]
    fn cursor_round_trips_through_json() {
        let c = Cursor {
            epoch: 3,
            unit: 2,
            row: 5,
            ..Cursor::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"epoch":3,"unit":2,"row":5}"#);
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
        // Spans keep the two-number form of earlier checkpoints; a cut span has three.
        let c = Cursor {
            plan: Some(vec![
                Span::whole(4),
                Span {
                    unit: 1,
                    start: 3,
                    end: Some(4),
                },
            ]),
            shuffled: Some(Shuffled {
                buffer: 64,
                taken: 9,
            }),
            ..c
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""plan":[[4,0],[1,3,4]]"#), "{json}");
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
        let old = r#"{"epoch":1,"unit":0,"row":2,"plan":[[5,2],[7,0]]}"#;
        let c: Cursor = serde_json::from_str(old).unwrap();
        assert_eq!(c.plan.unwrap()[0].end, None);
        assert!(
            serde_json::from_str::<Cursor>(r#"{"epoch":1,"unit":0,"row":2,"plan":[[5]]}"#).is_err()
        );
    }
}
