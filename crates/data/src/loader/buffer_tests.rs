//! Loader tests of the shuffle buffer and prefetching: mixing across row groups, every row once
//! per epoch, exact resume (also through a prefetch thread), resharding and a changed buffer.

use super::tests::{config, dataset};
use super::*;
use crate::prefetch::Prefetch;
use std::collections::BTreeSet;

/// Row group (unit) of a row id of the test dataset: 8 rows per group, in id order.
fn unit_of(id: &str) -> usize {
    id.rsplit('-').next().unwrap().parse::<usize>().unwrap() / 8
}

fn buffered(shards: &[PathBuf], tok: &Arc<TextTokenizer>, batch: usize, rows: usize) -> Loader {
    Loader::new(config(shards.to_vec(), tok.clone(), batch), 0, 1)
        .unwrap()
        .with_shuffle_buffer(rows)
        .unwrap()
}

fn ids(loader: &mut Loader, batches: usize) -> Vec<String> {
    (0..batches)
        .flat_map(|_| loader.next_batch().unwrap().ids)
        .collect()
}

#[test]
fn the_buffer_mixes_row_groups_and_each_epoch_reads_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    // Without a buffer a batch of 8 is one row group; with 24 rows buffered it spans several.
    let mut plain = buffered(&shards, &tok, 8, 0);
    let first: BTreeSet<usize> = ids(&mut plain, 1).iter().map(|i| unit_of(i)).collect();
    assert_eq!(first.len(), 1);
    let mut l = buffered(&shards, &tok, 8, 24);
    let e0 = ids(&mut l, 5);
    let groups: BTreeSet<usize> = e0[..8].iter().map(|i| unit_of(i)).collect();
    assert!(groups.len() >= 2, "{groups:?}");
    assert_eq!(
        l.cursor(),
        Cursor::epoch_start(1),
        "the buffer drains at the epoch's end"
    );
    let e1 = ids(&mut l, 5);
    for e in [&e0, &e1] {
        assert_eq!(e.iter().collect::<BTreeSet<_>>().len(), 40);
    }
    assert_ne!(e0, e1);
    // The order is the seed's alone.
    assert_eq!(ids(&mut buffered(&shards, &tok, 8, 24), 5), e0);
}

/// Reads `before` batches, saves, and checks a fresh loader seeked there continues identically.
fn check_buffered_resume(batch: usize, before: usize, after: usize) -> Cursor {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut a = buffered(&shards, &tok, batch, 12);
    ids(&mut a, before);
    let saved = serde_json::to_string(&a.cursor()).unwrap();
    let want: Vec<Batch> = (0..after).map(|_| a.next_batch().unwrap()).collect();
    let mut b = buffered(&shards, &tok, batch, 12);
    let cursor: Cursor = serde_json::from_str(&saved).unwrap();
    b.seek(&cursor).unwrap();
    let got: Vec<Batch> = (0..after).map(|_| b.next_batch().unwrap()).collect();
    assert_eq!(got, want, "resumed at {cursor:?}");
    cursor
}

#[test]
fn resume_with_a_shuffle_buffer_is_exact() {
    // Early in the epoch, later on, and when the buffer is draining.
    for before in [1, 3, 6] {
        let c = check_buffered_resume(5, before, 4);
        assert_eq!(c.taken(), 5 * before, "{c:?}");
        assert_eq!(
            (c.epoch, c.unit, c.row),
            (0, 0, 0),
            "base: the epoch's start"
        );
    }
    // Across the epoch boundary: 7 batches of 6 = 42 rows, 2 into epoch 1.
    let c = check_buffered_resume(6, 7, 3);
    assert_eq!((c.epoch, c.taken()), (1, 2));
    // Exactly at the boundary the cursor is the next epoch's start, with nothing buffered.
    assert_eq!(check_buffered_resume(8, 5, 2), Cursor::epoch_start(1));
}

#[test]
fn prefetched_and_buffered_batches_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut a = Prefetch::new(buffered(&shards, &tok, 5, 12), 2);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(a.next_batch(5).unwrap().ids);
    }
    // Saved while the thread has batches 4 and 5 prepared: the position is after batch 3.
    let saved = a.position();
    assert_eq!(saved.taken(), 15);
    let want: Vec<Batch> = (0..4).map(|_| a.next_batch(5).unwrap()).collect();
    // The same as without prefetching.
    let mut plain = buffered(&shards, &tok, 5, 12);
    assert_eq!(ids(&mut plain, 3), seen);
    let direct: Vec<Batch> = (0..4).map(|_| plain.next_batch().unwrap()).collect();
    assert_eq!(direct, want);
    let mut b = Prefetch::new(buffered(&shards, &tok, 5, 12), 2);
    b.seek(&saved).unwrap();
    let got: Vec<Batch> = (0..4).map(|_| b.next_batch(5).unwrap()).collect();
    assert_eq!(got, want);
}

#[test]
fn resharding_buffered_ranks_reads_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut seen = Vec::new();
    let mut cursors = Vec::new();
    for r in 0..2 {
        let mut l = Loader::new(config(shards.clone(), tok.clone(), 3), r, 2)
            .unwrap()
            .with_shuffle_buffer(10)
            .unwrap();
        seen.extend(ids(&mut l, 3));
        cursors.push(l.cursor());
        assert!(l.cursor().taken() > 0);
    }
    for new_world in [3, 1] {
        let mut epoch0 = seen.clone();
        for r in 0..new_world {
            let mut l = Loader::new(config(shards.clone(), tok.clone(), 3), r, new_world)
                .unwrap()
                .with_shuffle_buffer(10)
                .unwrap();
            l.seek_resharded(&cursors).unwrap();
            while l.cursor().epoch == 0 {
                epoch0.extend(l.next_batch_of(1).unwrap().ids);
            }
        }
        let n = epoch0.len();
        let distinct: BTreeSet<&String> = epoch0.iter().collect();
        assert_eq!((n, distinct.len()), (40, 40), "world 2 → {new_world}");
    }
}

#[test]
fn a_changed_buffer_size_still_reads_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut a = buffered(&shards, &tok, 4, 16);
    let epoch0 = ids(&mut a, 3);
    let saved = a.cursor();
    for size in [8, 0] {
        let mut rest = epoch0.clone();
        let mut b = buffered(&shards, &tok, 1, size);
        b.seek(&saved).unwrap();
        while b.cursor().epoch == 0 {
            rest.extend(b.next_batch().unwrap().ids);
        }
        let distinct: BTreeSet<&String> = rest.iter().collect();
        assert_eq!((rest.len(), distinct.len()), (40, 40), "buffer 16 → {size}");
    }
}

#[test]
fn an_unshuffled_loader_ignores_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut cfg = config(shards, tok, 8);
    cfg.shuffle = false;
    let mut l = Loader::new(cfg, 0, 1)
        .unwrap()
        .with_shuffle_buffer(32)
        .unwrap();
    let want: Vec<String> = (0..8).map(|i| format!("shapes-1-{i}")).collect();
    assert_eq!(l.next_batch().unwrap().ids, want);
    assert!(l.cursor().shuffled.is_none());
}
