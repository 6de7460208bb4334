//! Where a channel lives and how a position is written down (pure).
//!
//! Each Redis shard numbers its messages with one sequence for all of its
//! channels (docs/CLUSTER.md). A subscription whose channels all live on
//! one shard is resumed by one number, as on a single node. One that spans
//! shards carries a composite id: one number per shard, in shard order,
//! joined by `-` (`1733051234000017-0-1733051234000342`), where each is the
//! last message of that shard the client was sent (0: none yet).

/// The shard that holds `channel`: FNV-1a (64-bit) of its bytes modulo the
/// shard count. Fixed here rather than std's hasher, which may change
/// between Rust versions: every node of a fleet must agree, whatever it
/// was built with.
pub fn shard_of(channel: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards as u64) as usize
}

/// Writes a composite id.
pub fn encode_positions(positions: &[u64]) -> String {
    let mut out = String::with_capacity(positions.len() * 17);
    for (i, p) in positions.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&p.to_string());
    }
    out
}

/// Reads a composite id of exactly `shards` components; None when it is
/// not one (a plain number is read by the caller as a single position).
pub fn parse_positions(id: &str, shards: usize) -> Option<Vec<u64>> {
    let parts: Vec<&str> = id.trim().split('-').collect();
    if parts.len() != shards || shards < 2 {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            (!p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("anything", 1), 0);
        // Fixed values: a change here would split a running fleet.
        assert_eq!(shard_of("news", 2), shard_of("news", 2));
        let fixed: Vec<usize> = ["a", "b", "news", "chat:1"]
            .iter()
            .map(|c| shard_of(c, 4))
            .collect();
        assert_eq!(fixed, [0, 1, 2, 2]);
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[shard_of(&format!("ch{i}"), 4)] += 1;
        }
        assert!(counts.iter().all(|&n| n > 800), "{counts:?}");
    }

    #[test]
    fn composite_ids_round_trip() {
        assert_eq!(encode_positions(&[5, 0, 17]), "5-0-17");
        assert_eq!(parse_positions("5-0-17", 3), Some(vec![5, 0, 17]));
        assert_eq!(parse_positions("5-0", 3), None);
        assert_eq!(parse_positions("17", 1), None);
        assert_eq!(parse_positions("5--17", 3), None);
        assert_eq!(parse_positions("5-x-17", 3), None);
        assert_eq!(parse_positions("99999999999999999999999-1", 2), None);
    }
}
