//! Who pulls what from whom: the designs the simulator compares. Each node
//! pulls the file in one or more lanes, a lane being every `step`-th chunk
//! from `first`, in order, one chunk at a time, from the first live node of
//! the lane's upstream list that can serve it, and from the source after
//! the list.

use naming_server::domain::distribution::plan::chain_upstreams;

/// Chunks `first`, `first + step`, … pulled in order from `upstream`
/// (nearest first; the source is implied after it).
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub first: usize,
    pub step: usize,
    pub upstream: Vec<usize>,
}

impl Lane {
    /// The whole file from `upstream`.
    pub fn whole(upstream: Vec<usize>) -> Self {
        Self {
            first: 0,
            step: 1,
            upstream,
        }
    }
}

/// A distribution's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub name: String,
    /// `lanes[i]`: node `i`'s lanes, together covering every chunk once.
    pub lanes: Vec<Vec<Lane>>,
    /// The number of hops from the source to the deepest node.
    pub depth: usize,
    /// For one chain that adapts during the job as the naming server
    /// does: the chain, head first (see `engine`).
    pub adapting: Option<Vec<usize>>,
}

/// Today's plan: one chain in `order` (the naming server's own function
/// makes the upstream lists).
pub fn chain(name: &str, order: &[usize]) -> Topology {
    let nodes = order.len();
    let mut lanes = vec![Vec::new(); nodes];
    for (position, above) in chain_upstreams(nodes).into_iter().enumerate() {
        lanes[order[position]] = vec![Lane::whole(above.into_iter().map(|p| order[p]).collect())];
    }
    Topology {
        name: name.to_owned(),
        lanes,
        depth: nodes,
        adapting: None,
    }
}

/// [`chain`], pulling around the nodes that fall behind during the job
/// as the naming server's `distribution::adapt` decides.
pub fn adapting_chain(name: &str, order: &[usize]) -> Topology {
    Topology {
        adapting: Some(order.to_vec()),
        ..chain(name, order)
    }
}

/// `order` cut into `count` chains of nearly equal length, each pulling
/// from the source at its head.
pub fn chains(order: &[usize], count: usize) -> Topology {
    let nodes = order.len();
    let count = count.clamp(1, nodes.max(1));
    let per = nodes.div_ceil(count);
    let mut lanes = vec![Vec::new(); nodes];
    let mut depth = 0;
    for group in order.chunks(per.max(1)) {
        depth = depth.max(group.len());
        for (position, above) in chain_upstreams(group.len()).into_iter().enumerate() {
            lanes[group[position]] =
                vec![Lane::whole(above.into_iter().map(|p| group[p]).collect())];
        }
    }
    Topology {
        name: format!("{count} chains"),
        lanes,
        depth,
        adapting: None,
    }
}

/// The ancestors of heap position `position` in a `fanout`-ary heap,
/// nearest first.
fn ancestors(mut position: usize, fanout: usize) -> Vec<usize> {
    let mut above = Vec::new();
    while position > 0 {
        position = (position - 1) / fanout;
        above.push(position);
    }
    above
}

/// Depth in hops of a `fanout`-ary heap of `nodes` nodes, its root one hop
/// from the source.
fn heap_depth(nodes: usize, fanout: usize) -> usize {
    if nodes == 0 {
        return 0;
    }
    ancestors(nodes - 1, fanout).len() + 1
}

/// A `fanout`-ary tree over `order` through which every node pulls the
/// whole file: each inner node sends it all to `fanout` children.
pub fn tree(order: &[usize], fanout: usize) -> Topology {
    let nodes = order.len();
    let mut lanes = vec![Vec::new(); nodes];
    for (position, &node) in order.iter().enumerate() {
        let above = ancestors(position, fanout).into_iter().map(|p| order[p]);
        lanes[node] = vec![Lane::whole(above.collect())];
    }
    Topology {
        name: format!("{fanout}-ary tree"),
        lanes,
        depth: heap_depth(nodes, fanout),
        adapting: None,
    }
}

/// How many senders a slow node's pulls are spread over, per tree: each
/// of them gives it a sliver, so none is held up.
pub const SLOW_SPREAD: usize = 8;

/// The proposed design: the file in `trees` stripes (chunk j in stripe
/// j mod `trees`), each sent down its own `trees`-ary tree of the fast
/// nodes, the trees rotated so that each fast node is an inner node of at
/// most one tree and a leaf of the others: every fast node sends about one
/// copy of the file and receives it from `trees` senders at once, and the
/// deepest is about log_trees(k) hops down. The slow nodes (`slow[i]`) are
/// leaves only, each pulling from `trees` × [`SLOW_SPREAD`] fast nodes (one
/// lane each), so that it takes a sliver of many uplinks instead of a
/// share of a few.
pub fn striped_trees(slow: &[bool], trees: usize) -> Topology {
    let nodes = slow.len();
    let trees = trees.max(1);
    let fast: Vec<usize> = (0..nodes).filter(|&i| !slow[i]).collect();
    let slow_nodes: Vec<usize> = (0..nodes).filter(|&i| slow[i]).collect();
    // Inner nodes of a heap of n: ⌈(n−1)/trees⌉; rotating by that many
    // gives each tree its own.
    let shift = fast.len().saturating_sub(1).div_ceil(trees).max(1);
    let mut lanes = vec![Vec::new(); nodes];
    for tree in 0..trees {
        let rotated: Vec<usize> = (0..fast.len())
            .map(|q| fast[(q + tree * shift) % fast.len()])
            .collect();
        for (position, &node) in rotated.iter().enumerate() {
            let above = ancestors(position, trees).into_iter().map(|p| rotated[p]);
            lanes[node].push(Lane {
                first: tree,
                step: trees,
                upstream: above.collect(),
            });
        }
        if rotated.is_empty() {
            continue;
        }
        let step = trees * SLOW_SPREAD;
        for (w, &node) in slow_nodes.iter().enumerate() {
            for sliver in 0..SLOW_SPREAD {
                // A different sender per lane and per slow node, from the
                // leaves up.
                let pick = (w * step + sliver * trees + tree) % rotated.len();
                let parent = rotated.len() - 1 - pick;
                let mut upstream = vec![rotated[parent]];
                upstream.extend(ancestors(parent, trees).into_iter().map(|p| rotated[p]));
                lanes[node].push(Lane {
                    first: tree + sliver * trees,
                    step,
                    upstream,
                });
            }
        }
    }
    let depth = heap_depth(fast.len(), trees) + usize::from(!slow_nodes.is_empty());
    Topology {
        name: format!("{trees} striped trees"),
        lanes,
        depth,
        adapting: None,
    }
}
