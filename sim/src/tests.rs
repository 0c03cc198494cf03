//! Small cases against times worked out by hand. B = 100 bytes/s, c = 100
//! bytes: a chunk takes 1 s on a link.

use crate::engine::run;
use crate::model::{Change, ChangeKind, FileShape, Fleet, Link, Source};
use crate::topology::{self, Topology};
use crate::{Scenario, compare};

const B: f64 = 100.0;

fn fleet(nodes: usize, latency: f64) -> Fleet {
    Fleet {
        nodes: vec![Link::symmetric(B); nodes],
        source: Source::Holder { up: B },
        latency,
        changes: Vec::new(),
    }
}

/// `chunks` chunks of 100 bytes.
fn file(chunks: u64) -> FileShape {
    FileShape {
        size: chunks * 100,
        chunk: 100,
    }
}

fn times(fleet: &Fleet, chunks: u64, topology: &Topology) -> Vec<f64> {
    run(fleet, &file(chunks), topology)
        .finish
        .into_iter()
        .map(|t| t.unwrap_or(f64::NAN))
        .collect()
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn one_node_takes_s_over_b_plus_the_hop() {
    // 4 chunks at 1 s each, then 0.5 s until it can serve the last.
    close(
        &times(&fleet(1, 0.5), 4, &topology::chain("c", &[0])),
        &[4.5],
    );
}

#[test]
fn a_chain_pipelines_one_chunk_a_hop() {
    // Node p holds chunk j at p + j + 1 s: S/B + p·c/B.
    let order = [2, 0, 1];
    close(
        &times(&fleet(3, 0.0), 5, &topology::chain("c", &order)),
        &[6.0, 7.0, 5.0],
    );
}

#[test]
fn a_binary_tree_halves_each_inner_nodes_uplink() {
    // The root gets chunk j at j + 1; its two children share its uplink,
    // 2 s a chunk, and are never ahead of it: chunk j at 1 + 2(j + 1).
    close(
        &times(&fleet(3, 0.0), 3, &topology::tree(&[0, 1, 2], 2)),
        &[3.0, 7.0, 7.0],
    );
}

#[test]
fn a_dead_node_is_skipped_by_pulling_from_the_next_one_up() {
    // Node 1 of the chain 0 → 1 → 2 dies at once: node 2 pulls from
    // node 0, one chunk behind it.
    let mut fleet = fleet(3, 0.0);
    fleet.changes.push(Change {
        at: 0.0,
        node: 1,
        kind: ChangeKind::Die,
    });
    let outcome = run(&fleet, &file(3), &topology::chain("c", &[0, 1, 2]));
    assert_eq!(outcome.finish[1], None);
    close(&[outcome.finish[0].unwrap_or(0.0)], &[3.0]);
    close(&[outcome.finish[2].unwrap_or(0.0)], &[4.0]);
}

#[test]
fn a_node_slowed_mid_job_slows_the_chain_below_it() {
    // Node 0 of 0 → 1 drops to B/2 both ways at 2.5 s. Node 0: chunks 1
    // and 2 by 2 s; chunk 3 half done at 2.5 s, the other half at B/2 by
    // 3.5 s; chunk 4 at B/2 by 5.5 s. Node 1, pulling from node 0: chunk
    // 1 by 2 s; chunk 2 half by 2.5 s, the rest at B/2 by 3.5 s; chunk 3
    // (held by node 0 at 3.5 s) by 5.5 s; chunk 4 by 7.5 s.
    let mut fleet = fleet(2, 0.0);
    fleet.changes.push(Change {
        at: 2.5,
        node: 0,
        kind: ChangeKind::Slow(Link::symmetric(B / 2.0)),
    });
    close(
        &times(&fleet, 4, &topology::chain("c", &[0, 1])),
        &[5.5, 7.5],
    );
}

#[test]
fn an_adapting_chain_pulls_around_a_node_whose_uplink_drops() {
    // Node 1 of 0 → 1 → 2 → 3 (40 chunks) sends at B/25 from 3.5 s on,
    // half-way through node 2's chunk 1: the other half takes until 16 s.
    // Left alone, node 2 gets each of the other 38 chunks in 25 s (966 s),
    // node 3 a second after it. Adapting: at 10 s node 2 is 8 chunks
    // behind node 1 (it holds 1, node 1 holds 9) at a ninth of its rate,
    // so node 1 is bypassed. Node 2 ends its chunk at 16 s, then shares
    // node 0's uplink with node 1 (B/2 each): node 1, holding 15 then,
    // has the last 25 at 66 s, node 2 25 more by then and the last 13 at
    // B (79 s); node 3, a chunk behind node 2, 80 s. Node 0 is never
    // held up (40 s).
    let mut fleet = fleet(4, 0.0);
    fleet.changes.push(Change {
        at: 3.5,
        node: 1,
        kind: ChangeKind::Slow(Link {
            up: B / 25.0,
            down: B,
        }),
    });
    let order = [0, 1, 2, 3];
    close(
        &times(&fleet, 40, &topology::chain("c", &order)),
        &[40.0, 41.0, 966.0, 967.0],
    );
    close(
        &times(&fleet, 40, &topology::adapting_chain("a", &order)),
        &[40.0, 66.0, 79.0, 80.0],
    );
}

#[test]
fn from_gcs_every_chain_head_reads_at_its_own_rate() {
    let mut fleet = fleet(4, 0.0);
    fleet.source = Source::Gcs;
    // Two chains of two: heads at S/B, the others one chunk later.
    close(
        &times(&fleet, 3, &topology::chains(&[0, 1, 2, 3], 2)),
        &[3.0, 4.0, 3.0, 4.0],
    );
}

#[test]
fn striped_trees_send_each_node_one_copy() {
    // 7 fast nodes, 2 trees: each tree's 3 inner nodes are the other's
    // leaves, so no node sends more than the file.
    let topology = topology::striped_trees(&[false; 7], 2);
    let mut senders = vec![0usize; 7];
    for lanes in &topology.lanes {
        assert_eq!(lanes.len(), 2);
        for lane in lanes {
            if let Some(&parent) = lane.upstream.first() {
                senders[parent] += 1;
            }
        }
    }
    // Each sender serves 2 children half the file each (one stripe).
    assert!(senders.iter().all(|&n| n <= 2), "{senders:?}");
    assert_eq!(senders.iter().sum::<usize>(), 2 * 6);
}

#[test]
fn at_a_thousand_nodes_the_striped_trees_meet_the_bound_and_the_chain_does_not() {
    // 1 GiB in 8 MiB chunks at 10 Gbit/s, 5 % of the nodes at B/4.
    let scenario = Scenario {
        nodes: 1000,
        rate: 1.25e9,
        slow_every: 20,
        slow_factor: 4.0,
        latency: 0.0002,
        size: 1 << 30,
        chunk: 8 << 20,
    };
    let rows = compare(&scenario);
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.design == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let striped = row("2 striped trees");
    assert!(striped.fast_ratio <= 1.15, "{striped:?}");
    assert!(striped.slow_ratio.is_some_and(|r| r <= 1.15), "{striped:?}");
    let chain = row("chain, id order");
    assert!(chain.fast_ratio > 5.0, "{chain:?}");
}
