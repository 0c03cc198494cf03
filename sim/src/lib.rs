//! dfs-sim: a deterministic model of a distribution job on a fleet, to
//! compare plans before running them. It runs the naming server's own
//! planning function for today's chain (`plan::chain_upstreams`) and the
//! candidate designs of [`topology`] on the model of [`model`], with the
//! event simulation of [`engine`]; [`sweep`] compares them for k = 10 …
//! 10,000 nodes against the pipelined-broadcast bound
//! S/B + ⌈log₂ k⌉·c/B.
//!
//! Layout: `model.rs` (fleet, source, file, changes), `topology.rs`
//! (chain, chains, trees, striped trees), `engine.rs` (the simulation),
//! this file (scenarios and the sweep), `main.rs` (the command line),
//! `plot.py` (the PNG).

pub mod engine;
pub mod model;
pub mod topology;

use naming_server::domain::distribution::plan::chain_order;
use serde::Serialize;

use model::{FileShape, Fleet, Link, Source};
use topology::Topology;

/// A fleet of `nodes` nodes at `rate` bytes/s each way, one in
/// `slow_every` of them (the first, then every `slow_every`-th) at
/// `rate / slow_factor`, fed by one holder at `rate`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scenario {
    pub nodes: usize,
    pub rate: f64,
    pub slow_every: usize,
    pub slow_factor: f64,
    pub latency: f64,
    pub size: u64,
    pub chunk: u64,
}

impl Scenario {
    pub fn is_slow(&self, node: usize) -> bool {
        self.slow_every > 0 && node % self.slow_every == 0
    }

    pub fn slow(&self) -> Vec<bool> {
        (0..self.nodes).map(|i| self.is_slow(i)).collect()
    }

    pub fn fleet(&self) -> Fleet {
        Fleet {
            nodes: (0..self.nodes)
                .map(|i| {
                    let factor = if self.is_slow(i) {
                        self.slow_factor
                    } else {
                        1.0
                    };
                    Link::symmetric(self.rate / factor)
                })
                .collect(),
            source: Source::Holder { up: self.rate },
            latency: self.latency,
            changes: Vec::new(),
        }
    }

    pub fn file(&self) -> FileShape {
        FileShape {
            size: self.size,
            chunk: self.chunk,
        }
    }

    /// The bound the issue sets for the fast nodes: S/B + ⌈log₂ k⌉·c/B.
    pub fn fast_bound(&self) -> f64 {
        let hops = (self.nodes.max(1) as f64).log2().ceil();
        (self.size as f64 + hops * self.chunk as f64) / self.rate
    }

    /// What a slow node's own link allows: S at its rate.
    pub fn slow_bound(&self) -> f64 {
        self.size as f64 * self.slow_factor / self.rate
    }

    /// The designs compared: one chain in registration order (before the
    /// nodes' send rates are known), the same adapting during the job as
    /// the naming server does, the chain the naming server plans once the
    /// rates are known (slow senders last), 4 chains, a binary tree, and
    /// striped trees with 2 and 4 stripes.
    pub fn designs(&self) -> Vec<Topology> {
        let slow = self.slow();
        let registered: Vec<usize> = (0..self.nodes).collect();
        // The naming server's own ordering, on the rates the nodes report.
        let send_rates: Vec<u64> = self.fleet().nodes.iter().map(|l| l.up as u64).collect();
        let fast_first = chain_order(&send_rates);
        vec![
            topology::chain("chain, id order", &registered),
            topology::adapting_chain("chain, id order, adapting", &registered),
            topology::chain("chain, slow senders last", &fast_first),
            topology::chains(&fast_first, 4),
            topology::tree(&fast_first, 2),
            topology::striped_trees(&slow, 2),
            topology::striped_trees(&slow, 4),
        ]
    }
}

/// One design on one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub nodes: usize,
    pub design: String,
    pub depth: usize,
    /// Seconds until every fast node / every slow node held the file.
    pub fast_done: f64,
    pub slow_done: Option<f64>,
    pub fast_bound: f64,
    pub slow_bound: f64,
    pub fast_ratio: f64,
    pub slow_ratio: Option<f64>,
}

/// Runs every design on `scenario`.
pub fn compare(scenario: &Scenario) -> Vec<Row> {
    let (fleet, file) = (scenario.fleet(), scenario.file());
    scenario
        .designs()
        .iter()
        .map(|design| {
            let outcome = engine::run(&fleet, &file, design);
            let done = |slow: bool| {
                (0..scenario.nodes)
                    .filter(|&i| scenario.is_slow(i) == slow)
                    .map(|i| outcome.finish[i].unwrap_or(f64::INFINITY))
                    .reduce(f64::max)
            };
            let fast_done = done(false).unwrap_or(0.0);
            let slow_done = done(true);
            Row {
                nodes: scenario.nodes,
                design: design.name.clone(),
                depth: design.depth,
                fast_done,
                slow_done,
                fast_bound: scenario.fast_bound(),
                slow_bound: scenario.slow_bound(),
                fast_ratio: fast_done / scenario.fast_bound(),
                slow_ratio: slow_done.map(|t| t / scenario.slow_bound()),
            }
        })
        .collect()
}

/// [`compare`] for each of `nodes` on `base`.
pub fn sweep(base: &Scenario, nodes: &[usize]) -> Vec<Row> {
    nodes
        .iter()
        .flat_map(|&k| compare(&Scenario { nodes: k, ..*base }))
        .collect()
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| k | design | depth | fast nodes done | / (S/B + ⌈log₂ k⌉·c/B) | slow nodes done | / (own link) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let slow =
            |v: Option<f64>, unit: &str| v.map_or("–".to_owned(), |v| format!("{v:.2}{unit}"));
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} s | {:.2} | {} | {} |\n",
            row.nodes,
            row.design,
            row.depth,
            row.fast_done,
            row.fast_ratio,
            slow(row.slow_done, " s"),
            slow(row.slow_ratio, ""),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
