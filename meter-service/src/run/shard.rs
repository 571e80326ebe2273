//! Splitting one config's meters among processes.

/// Which part of a config's meters this process reads: `index` of `count`
/// (`meter run --shard 2/4`), by a stable hash of each meter's name, so a
/// meter keeps its shard when others are added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether meter `name` belongs to this shard.
    pub fn has(&self, name: &str) -> bool {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        h % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// Whether the process reading `shard` (`None`: all meters) does the
    /// jobs one process per config does: the bot's commands, the web page.
    pub fn is_first(shard: Option<Shard>) -> bool {
        shard.is_none_or(|s| s.index == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_meters_stably_and_completely() {
        let names: Vec<String> = (0..300).map(|i| format!("meter-{i}")).collect();
        let shards: Vec<Shard> = (1..=4).map(|i| Shard { index: i, count: 4 }).collect();
        for n in &names {
            assert_eq!(shards.iter().filter(|s| s.has(n)).count(), 1, "{n}");
        }
        for s in &shards {
            let k = names.iter().filter(|n| s.has(n)).count();
            assert!((45..=105).contains(&k), "shard {s}: {k} of 300");
        }
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
