//! Where new chunk copies go, for a write (`chunks::allocate`) and for a
//! repair: [`choose`] picks distinct nodes that have room for the chunk,
//! at random weighted by the room each has, so emptier nodes take more
//! chunks while the load still spreads over all of them.
//!
//! A node's room is its free space minus `FREE_SPACE_RESERVE`, as its last
//! heartbeat reported it, and none at all when the node says it is full (a
//! write failed there for lack of space).

use std::borrow::Borrow;

use dfs_common::MIN_CHUNK_SIZE;
use dfs_common::units::format_size;
use rand::Rng;
use rand::seq::{SliceRandom, index};

use crate::store::NodeRecord;

/// Bytes `node` can take for new chunks while keeping `reserve` free.
pub fn room(node: &NodeRecord, reserve: u64) -> u64 {
    if node.stats.full {
        0
    } else {
        node.stats.free_bytes.saturating_sub(reserve)
    }
}

/// Whether `node` is out of room for any chunk: it says so, or its free
/// space beyond the reserve is less than the smallest chunk.
pub fn is_full(node: &NodeRecord, reserve: u64) -> bool {
    room(node, reserve) < MIN_CHUNK_SIZE
}

/// Too few candidates have room for the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    /// Nodes wanted.
    pub need: usize,
    /// Candidates with room.
    pub have: usize,
    /// The chunk's size.
    pub size: u64,
    /// The reserve every node keeps.
    pub reserve: u64,
}

impl std::fmt::Display for Shortage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "need {} storage nodes with room for a {} chunk, have {} \
             (each node keeps FREE_SPACE_RESERVE = {} free)",
            self.need,
            format_size(self.size),
            self.have,
            format_size(self.reserve)
        )
    }
}

/// `need` distinct nodes of `candidates` that each have room for `size`
/// bytes beyond `reserve`, as [`choose_up_to`] draws them; a [`Shortage`]
/// when fewer have room.
pub fn choose<T, R>(
    candidates: Vec<T>,
    need: usize,
    size: u64,
    reserve: u64,
    rng: &mut R,
) -> Result<Vec<T>, Shortage>
where
    T: Borrow<NodeRecord>,
    R: Rng + ?Sized,
{
    let chosen = choose_up_to(candidates, need, size, reserve, rng);
    if chosen.len() < need {
        return Err(Shortage {
            need,
            have: chosen.len(),
            size,
            reserve,
        });
    }
    Ok(chosen)
}

/// Up to `want` distinct nodes of `candidates` that each have room for
/// `size` bytes beyond `reserve` (all of those when fewer have room),
/// drawn at random with odds in proportion to their room, in random order
/// (the first one receives the bytes and starts the chain).
pub fn choose_up_to<T, R>(
    candidates: Vec<T>,
    want: usize,
    size: u64,
    reserve: u64,
    rng: &mut R,
) -> Vec<T>
where
    T: Borrow<NodeRecord>,
    R: Rng + ?Sized,
{
    let (mut with_room, weights): (Vec<Option<T>>, Vec<f64>) = candidates
        .into_iter()
        .filter_map(|node| {
            let room = room(node.borrow(), reserve);
            (room > 0 && room >= size).then_some((Some(node), room as f64))
        })
        .unzip();
    let amount = want.min(with_room.len());
    let picked = index::sample_weighted(rng, with_room.len(), |i| weights[i], amount)
        // Only for weights that are not finite and positive, which room
        // never gives; an even draw is the sane answer anyway.
        .unwrap_or_else(|_| index::sample(rng, with_room.len(), amount));
    let mut chosen: Vec<T> = picked
        .into_iter()
        .filter_map(|i| with_room.get_mut(i).and_then(Option::take))
        .collect();
    chosen.shuffle(rng);
    chosen
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use dfs_common::api::NodeStats;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn node(id: &str, free_bytes: u64, full: bool) -> NodeRecord {
        NodeRecord {
            node_id: id.to_owned(),
            url: format!("http://{id}"),
            tcp_addr: format!("{id}:1"),
            last_heartbeat_ms: 0,
            stats: NodeStats {
                capacity_bytes: 1 << 40,
                free_bytes,
                chunk_count: 0,
                full,
                ..NodeStats::default()
            },
        }
    }

    fn ids(nodes: &[&NodeRecord]) -> Vec<String> {
        let mut ids: Vec<String> = nodes.iter().map(|n| n.node_id.clone()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn nodes_without_room_are_never_chosen() {
        let nodes = [
            node("roomy", 100 * MIB, false),
            node("tight", 9 * MIB, false),
            node("said-full", 100 * MIB, true),
            node("ok", 20 * MIB, false),
            node("exact", 10 * MIB, false),
        ];
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let chosen = choose(nodes.iter().collect(), 3, 8 * MIB, 2 * MIB, &mut rng);
            let chosen = chosen.expect("three nodes have room");
            assert_eq!(ids(&chosen), ["exact", "ok", "roomy"]);
        }
    }

    #[test]
    fn too_few_with_room_is_a_shortage_that_says_why() {
        let nodes = vec![
            node("a", 100 * MIB, false),
            node("b", 100 * MIB, true),
            node("c", MIB, false),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        let shortage = choose(nodes, 3, 8 * MIB, 0, &mut rng).expect_err("only a has room");
        assert_eq!(
            shortage,
            Shortage {
                need: 3,
                have: 1,
                size: 8 * MIB,
                reserve: 0
            }
        );
        assert_eq!(
            shortage.to_string(),
            "need 3 storage nodes with room for a 8 MiB chunk, have 1 \
             (each node keeps FREE_SPACE_RESERVE = 0 B free)"
        );
    }

    #[test]
    fn emptier_nodes_are_preferred_but_all_take_chunks() {
        let nodes = [
            node("empty", 1000 * MIB, false),
            node("half", 500 * MIB, false),
            node("mostly-used", 100 * MIB, false),
        ];
        let mut rng = StdRng::seed_from_u64(42);
        let mut count: HashMap<String, u32> = HashMap::new();
        let mut heads: HashMap<String, u32> = HashMap::new();
        for _ in 0..3000 {
            let chosen = choose(nodes.iter().collect(), 1, MIB, 0, &mut rng).expect("room");
            *count.entry(chosen[0].node_id.clone()).or_default() += 1;
        }
        // Odds 10 : 5 : 1 out of 16.
        let share = |id: &str| f64::from(count[id]) / 3000.0;
        assert!((share("empty") - 10.0 / 16.0).abs() < 0.04, "{count:?}");
        assert!((share("half") - 5.0 / 16.0).abs() < 0.04, "{count:?}");
        assert!(
            (share("mostly-used") - 1.0 / 16.0).abs() < 0.03,
            "{count:?}"
        );
        // Two of three: every node is still picked, and any can head the chain.
        for _ in 0..3000 {
            let chosen = choose(nodes.iter().collect(), 2, MIB, 0, &mut rng).expect("room");
            assert_eq!(chosen.len(), 2);
            assert_ne!(chosen[0].node_id, chosen[1].node_id);
            *heads.entry(chosen[0].node_id.clone()).or_default() += 1;
        }
        assert_eq!(heads.len(), 3, "{heads:?}");
    }

    #[test]
    fn up_to_takes_what_has_room() {
        let nodes = [
            node("a", 100 * MIB, false),
            node("b", 100 * MIB, true),
            node("c", 50 * MIB, false),
        ];
        let mut rng = StdRng::seed_from_u64(3);
        let chosen = choose_up_to(nodes.iter().collect(), 3, MIB, 0, &mut rng);
        assert_eq!(ids(&chosen), ["a", "c"]);
        let chosen = choose_up_to(nodes.iter().collect(), 1, MIB, 0, &mut rng);
        assert_eq!(chosen.len(), 1);
        assert!(choose_up_to(nodes.iter().collect(), 2, GIB, 0, &mut rng).is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_choice() {
        let nodes: Vec<NodeRecord> = (0..8)
            .map(|i| node(&format!("n{i}"), (i + 1) * 10 * MIB, false))
            .collect();
        let pick = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let chosen = choose(nodes.iter().collect(), 3, MIB, 0, &mut rng).expect("room");
            chosen.iter().map(|n| n.node_id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(pick(9), pick(9));
    }

    #[test]
    fn room_is_free_space_minus_the_reserve() {
        assert_eq!(room(&node("a", 10 * MIB, false), 4 * MIB), 6 * MIB);
        assert_eq!(room(&node("a", 3 * MIB, false), 4 * MIB), 0);
        assert_eq!(room(&node("a", 10 * MIB, true), 0), 0);
        assert!(is_full(&node("a", 4 * MIB, false), 4 * MIB));
        assert!(is_full(
            &node("a", 4 * MIB + MIN_CHUNK_SIZE - 1, false),
            4 * MIB
        ));
        assert!(!is_full(
            &node("a", 4 * MIB + MIN_CHUNK_SIZE, false),
            4 * MIB
        ));
        assert!(is_full(&node("a", 100 * MIB, true), 0));
    }
}
