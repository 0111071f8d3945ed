//! The order listings come in: sorted for general-purpose buckets; for directory buckets, a
//! walk of the directory tree that is stable but not lexicographic, as S3 Express lists.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::store::Object;

/// How a listing is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// By key, byte-wise (general-purpose buckets, and v1 listings).
    Lexicographic,
    /// Depth first through the `/`-separated levels, the entries of each level (objects and
    /// subdirectories together) ordered by a hash of their name: the same every time, so
    /// continuation tokens page without gaps or repeats, but not sorted.
    DirectoryWalk,
}

/// Where a key sits in a directory walk: one (hash, name) per level, each name but the last
/// keeping its `/`, so a directory `a/` and an object `a` are different entries of a level and
/// everything under `a/` follows `a/` itself.
fn walk_position(key: &str) -> Vec<(u32, &str)> {
    key.split_inclusive('/')
        .map(|level| (crc32fast::hash(level.as_bytes()), level))
        .collect()
}

/// The objects whose keys start with `prefix` and come after `marker` (empty: from the
/// start), in `order`. A common prefix as marker comes before the keys it rolls up; the
/// caller skips those.
pub(crate) fn ordered<'a>(
    objects: &'a BTreeMap<String, Object>,
    prefix: &str,
    marker: &str,
    order: Order,
) -> Vec<(&'a String, &'a Object)> {
    match order {
        Order::Lexicographic => {
            let lower = if !marker.is_empty() && marker >= prefix {
                Bound::Excluded(marker)
            } else {
                Bound::Included(prefix)
            };
            objects
                .range::<str, _>((lower, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .collect()
        }
        Order::DirectoryWalk => {
            let after = walk_position(marker);
            let mut walk: Vec<_> = objects
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, o)| (walk_position(k), k, o))
                .filter(|(position, _, _)| marker.is_empty() || *position > after)
                .collect();
            walk.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            walk.into_iter().map(|(_, k, o)| (k, o)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_keeps_directories_together_in_a_stable_unsorted_order() {
        let keys = ["a", "a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d", "e//f"];
        let mut sorted = keys.to_vec();
        sorted.sort_by_key(|k| walk_position(k));
        // Everything under a directory follows the directory's place, contiguously.
        for dir in ["a/", "c/", "a/b/", "e/"] {
            let at: Vec<usize> = (0..sorted.len())
                .filter(|&i| sorted[i].starts_with(dir))
                .collect();
            assert_eq!(
                at.last().unwrap() - at[0] + 1,
                at.len(),
                "{dir}: {sorted:?}"
            );
        }
        let mut lexicographic = keys.to_vec();
        lexicographic.sort();
        assert_ne!(sorted, lexicographic);
        assert!(walk_position("a/") < walk_position("a/1"));
        assert_ne!(walk_position("a"), walk_position("a/"));
    }
}
