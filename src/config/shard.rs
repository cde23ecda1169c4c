//! Sharding: which datasets of the catalogue one process serves when several share it.
//!
//! Shard `k` of `n` serves the datasets whose name hashes to `k`:
//! `fnv1a64(name as UTF-8) % n`. FNV-1a 64 is fixed by its definition (offset basis
//! `0xcbf29ce484222325`, prime `0x100000001b3`), so a dataset stays on its shard across
//! versions, builds and platforms; only a change of `n` or of the dataset's name moves it.

use std::fmt;

/// This process's part of the catalogue: shard `index` of `count` (default: 0 of 1, all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits, of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Shard {
    /// Shard `index` of `count`; refused unless `count > 0` and `index < count`.
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("--catalog.shards must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "--catalog.shard={index} is not below --catalog.shards={count}: shards are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard of a StatefulSet pod: the ordinal its name ends with (`…-N`).
    pub fn from_pod_name(pod: &str, count: u64) -> Result<Shard, String> {
        let ordinal = pod
            .rsplit_once('-')
            .map(|(_, n)| n)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "--catalog.shard-from-pod-name=`{pod}` does not end with `-N` (a StatefulSet pod's ordinal)"
                )
            })?;
        Shard::new(ordinal, count)
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The shard serving the dataset called `name`.
    pub fn of(name: &str, count: u64) -> u64 {
        fnv1a64(name.as_bytes()) % count.max(1)
    }

    /// Whether this shard serves the dataset called `name`.
    pub fn owns(&self, name: &str) -> bool {
        Shard::of(name, self.count) == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn assignment_is_pinned_so_datasets_never_move_between_versions() {
        // Changing these means every sharded deployment reshuffles on upgrade.
        let got: Vec<u64> = ["cpi", "unemployment", "gdp", "population"]
            .iter()
            .map(|n| Shard::of(n, 4))
            .collect();
        assert_eq!(got, [1, 0, 2, 2]);
        assert_eq!(fnv1a64(b"cpi"), 0xf5a8_f619_0cb3_0dfd);
        assert!(Shard::default().owns("anything"));
    }

    #[test]
    fn every_dataset_has_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        for n in 0..100 {
            let name = format!("dataset_{n}");
            assert_eq!(shards.iter().filter(|s| s.owns(&name)).count(), 1);
        }
    }

    #[test]
    fn bad_shards_are_refused_with_what_is_wrong() {
        assert_eq!(
            Shard::new(4, 4).unwrap_err(),
            "--catalog.shard=4 is not below --catalog.shards=4: shards are numbered 0 to 3"
        );
        assert_eq!(
            Shard::new(0, 0).unwrap_err(),
            "--catalog.shards must be at least 1"
        );
    }

    #[test]
    fn the_pod_name_gives_the_ordinal() {
        assert_eq!(
            Shard::from_pod_name("indicator-exporter-2", 4),
            Shard::new(2, 4)
        );
        assert_eq!(
            Shard::from_pod_name("ie-sharded-10", 16),
            Shard::new(10, 16)
        );
        for bad in ["indicator-exporter", "ie-", "ie-x1", "3"] {
            assert!(Shard::from_pod_name(bad, 4).is_err(), "{bad}");
        }
        assert!(Shard::from_pod_name("ie-4", 4)
            .unwrap_err()
            .contains("not below"));
    }
}
