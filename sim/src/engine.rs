//! The event simulation: chunks move whole (a node forwards a chunk once
//! it holds all of it, as the storage servers do), every transfer at a
//! fluid rate. A sender's uplink is shared among its transfers by water
//! filling (each capped by the receiver's downlink share), a receiver's
//! downlink split evenly among its concurrent transfers. A node pulls each
//! of its lanes one chunk at a time, in order, from the first live node of
//! the lane's list, waiting on it when it does not hold the chunk yet;
//! when that node dies it moves up the list and fetches the chunk it was
//! on again. An adapting chain is judged every second by the naming
//! server's own `adapt::laggards`, on what the nodes would report (bytes
//! held, the rate since they started on their current source): a node it
//! bypasses is skipped by its pullers from their next chunk on.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use naming_server::domain::distribution::adapt::{Standing, laggards};

use crate::model::{ChangeKind, FileShape, Fleet, Source};
use crate::topology::Topology;

/// When each node held the whole file, in seconds from the start (`None`:
/// it died, or never got it).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub finish: Vec<Option<f64>>,
}

/// Who sends a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    Source,
    Node(usize),
}

#[derive(Debug)]
struct Transfer {
    from: Sender,
    to: usize,
    lane: usize,
    chunk: usize,
    remaining: f64,
    rate: f64,
    since: f64,
    version: u64,
    live: bool,
}

#[derive(Debug, Clone, Copy)]
enum Event {
    /// Transfer `0` ends, if still at version `1`.
    Done(usize, u64),
    /// Node `0` can serve chunk `1`.
    Holds(usize, usize),
    /// `fleet.changes[0]` happens.
    Change(usize),
    /// The naming server judges an adapting chain.
    Judge,
}

/// How often an adapting chain is judged, and the least time a rate is
/// measured over (as the naming server does).
const JUDGE_EVERY: f64 = 1.0;

struct Timed {
    at: f64,
    seq: u64,
    event: Event,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    // Earliest first (the heap is a max-heap), ties in insertion order.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .total_cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

struct Sim<'a> {
    fleet: Fleet,
    file: &'a FileShape,
    topology: &'a Topology,
    now: f64,
    seq: u64,
    events: BinaryHeap<Timed>,
    transfers: Vec<Transfer>,
    /// Transfers each node sends / receives; the source's.
    sending: Vec<Vec<usize>>,
    receiving: Vec<Vec<usize>>,
    source_sending: Vec<usize>,
    /// Chunks each node has received / can serve (a hop's latency later).
    got: Vec<Vec<bool>>,
    holds: Vec<Vec<bool>>,
    held: Vec<usize>,
    /// Per node and lane: the transfer in flight.
    busy: Vec<Vec<Option<usize>>>,
    /// Per node: (chunk, puller, lane) waiting for it to hold the chunk.
    waiters: Vec<Vec<(usize, usize, usize)>>,
    dead: Vec<bool>,
    finish: Vec<Option<f64>>,
    /// Per node: what it pulls lane 0 from now (`None`: the source), and
    /// when it started on it with how many chunks held.
    source: Vec<Option<usize>>,
    source_start: Vec<(f64, usize)>,
    /// Nodes pulled around, by node.
    bypassed: Vec<bool>,
    /// The same for an adapting chain, by chain position.
    bypassed_at: Vec<bool>,
}

/// Runs `topology` on `fleet` for `file`.
pub fn run(fleet: &Fleet, file: &FileShape, topology: &Topology) -> Outcome {
    let nodes = fleet.nodes.len();
    let chunks = file.chunks();
    let mut sim = Sim {
        fleet: fleet.clone(),
        file,
        topology,
        now: 0.0,
        seq: 0,
        events: BinaryHeap::new(),
        transfers: Vec::new(),
        sending: vec![Vec::new(); nodes],
        receiving: vec![Vec::new(); nodes],
        source_sending: Vec::new(),
        got: vec![vec![false; chunks]; nodes],
        holds: vec![vec![false; chunks]; nodes],
        held: vec![0; nodes],
        busy: topology.lanes.iter().map(|l| vec![None; l.len()]).collect(),
        waiters: vec![Vec::new(); nodes],
        dead: vec![false; nodes],
        finish: vec![None; nodes],
        source: vec![None; nodes],
        source_start: vec![(0.0, 0); nodes],
        bypassed: vec![false; nodes],
        bypassed_at: vec![false; topology.adapting.as_ref().map_or(0, Vec::len)],
    };
    if topology.adapting.is_some() {
        sim.push(JUDGE_EVERY, Event::Judge);
    }
    for (index, change) in fleet.changes.iter().enumerate() {
        sim.push(change.at, Event::Change(index));
    }
    for node in 0..nodes {
        if chunks == 0 {
            sim.finish[node] = Some(0.0);
        }
        for lane in 0..topology.lanes[node].len() {
            sim.pull(node, lane);
        }
    }
    while let Some(Timed { at, event, .. }) = sim.events.pop() {
        sim.now = at;
        match event {
            Event::Done(id, version) => {
                let t = &sim.transfers[id];
                if t.live && t.version == version {
                    sim.complete(id);
                }
            }
            Event::Holds(node, chunk) => sim.now_holds(node, chunk),
            Event::Change(index) => sim.change(index),
            Event::Judge => sim.judge(),
        }
    }
    Outcome { finish: sim.finish }
}

impl Sim<'_> {
    fn push(&mut self, at: f64, event: Event) {
        self.seq += 1;
        self.events.push(Timed {
            at,
            seq: self.seq,
            event,
        });
    }

    /// The next chunk of `lane` that `node` lacks and is not fetching.
    fn next_chunk(&self, node: usize, lane: usize) -> Option<usize> {
        let lane = &self.topology.lanes[node][lane];
        (lane.first..self.got[node].len())
            .step_by(lane.step.max(1))
            .find(|&chunk| !self.got[node][chunk])
    }

    /// Starts `node`'s next pull of `lane`, or waits for its sender.
    fn pull(&mut self, node: usize, lane: usize) {
        if self.dead[node] || self.busy[node][lane].is_some() {
            return;
        }
        let Some(chunk) = self.next_chunk(node, lane) else {
            return;
        };
        let sender = self.topology.lanes[node][lane]
            .upstream
            .iter()
            .copied()
            .find(|&up| !self.dead[up] && !self.bypassed[up])
            .map_or(Sender::Source, Sender::Node);
        let from = match sender {
            Sender::Node(up) => Some(up),
            Sender::Source => None,
        };
        if lane == 0 && self.source[node] != from {
            self.source[node] = from;
            self.source_start[node] = (self.now, self.held[node]);
        }
        match sender {
            Sender::Node(up) if !self.holds[up][chunk] => {
                self.waiters[up].push((chunk, node, lane));
            }
            _ => self.start(sender, node, lane, chunk),
        }
    }

    fn start(&mut self, from: Sender, to: usize, lane: usize, chunk: usize) {
        let id = self.transfers.len();
        self.transfers.push(Transfer {
            from,
            to,
            lane,
            chunk,
            remaining: self.file.chunk_len(chunk),
            rate: 0.0,
            since: self.now,
            version: 0,
            live: true,
        });
        self.busy[to][lane] = Some(id);
        match from {
            Sender::Source => self.source_sending.push(id),
            Sender::Node(up) => self.sending[up].push(id),
        }
        self.receiving[to].push(id);
        self.reshare_around(from, to);
    }

    /// Ends transfer `id`: done when `completed`, else abandoned.
    fn end(&mut self, id: usize) {
        let t = &mut self.transfers[id];
        t.live = false;
        let (from, to, lane) = (t.from, t.to, t.lane);
        self.busy[to][lane] = None;
        match from {
            Sender::Source => self.source_sending.retain(|&x| x != id),
            Sender::Node(up) => self.sending[up].retain(|&x| x != id),
        }
        self.receiving[to].retain(|&x| x != id);
        if !self.dead[to] {
            self.reshare_around(from, to);
        } else if let Sender::Node(up) = from {
            self.reshare(Sender::Node(up));
        } else {
            self.reshare(Sender::Source);
        }
    }

    fn complete(&mut self, id: usize) {
        let (to, lane, chunk) = {
            let t = &self.transfers[id];
            (t.to, t.lane, t.chunk)
        };
        self.end(id);
        self.got[to][chunk] = true;
        self.push(self.now + self.fleet.latency, Event::Holds(to, chunk));
        self.pull(to, lane);
    }

    fn now_holds(&mut self, node: usize, chunk: usize) {
        if self.dead[node] {
            return;
        }
        self.holds[node][chunk] = true;
        self.held[node] += 1;
        if self.held[node] == self.holds[node].len() {
            self.finish[node] = Some(self.now);
        }
        let waiting = std::mem::take(&mut self.waiters[node]);
        let (ready, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|w| w.0 == chunk);
        self.waiters[node] = rest;
        for (_, puller, lane) in ready {
            self.pull(puller, lane);
        }
    }

    fn change(&mut self, index: usize) {
        let change = self.fleet.changes[index];
        let node = change.node;
        if self.dead[node] {
            return;
        }
        match change.kind {
            ChangeKind::Slow(link) => {
                self.fleet.nodes[node] = link;
                self.reshare_around(Sender::Node(node), node);
            }
            ChangeKind::Die => {
                self.dead[node] = true;
                self.finish[node] = None;
                for id in self.receiving[node].clone() {
                    self.end(id);
                }
                let pullers: Vec<(usize, usize)> = self.sending[node]
                    .iter()
                    .map(|&id| (self.transfers[id].to, self.transfers[id].lane))
                    .collect();
                for id in self.sending[node].clone() {
                    self.end(id);
                }
                let waiting = std::mem::take(&mut self.waiters[node]);
                for (to, lane) in pullers
                    .into_iter()
                    .chain(waiting.into_iter().map(|(_, to, lane)| (to, lane)))
                {
                    self.pull(to, lane);
                }
            }
        }
    }

    /// The naming server's look at an adapting chain: new bypasses, and
    /// the nodes waiting on a bypassed node move up their lists.
    fn judge(&mut self) {
        let Some(order) = self.topology.adapting.as_ref() else {
            return;
        };
        let mut position = vec![usize::MAX; self.dead.len()];
        for (p, &node) in order.iter().enumerate() {
            position[node] = p;
        }
        let chunk = self.file.chunk as f64;
        let chain: Vec<Option<Standing>> = order
            .iter()
            .map(|&node| {
                let (since, held_then) = self.source_start[node];
                let span = self.now - since;
                if self.dead[node] || span < JUDGE_EVERY {
                    return None;
                }
                let held = self.held[node];
                let bytes = if self.finish[node].is_some() {
                    self.file.size
                } else {
                    (held as f64 * chunk) as u64
                };
                Some(Standing {
                    bytes,
                    rate: ((held - held_then) as f64 * chunk / span) as u64,
                    from: self.source[node].map(|up| position[up]),
                })
            })
            .collect();
        let marks = laggards(&chain, &self.bypassed_at, self.file.chunk);
        let slow: Vec<usize> = marks.iter().map(|&(p, _)| order[p]).collect();
        for (p, _) in marks {
            self.bypassed_at[p] = true;
        }
        for node in slow {
            self.bypassed[node] = true;
            let waiting = std::mem::take(&mut self.waiters[node]);
            for (_, puller, lane) in waiting {
                self.pull(puller, lane);
            }
        }
        // Judged again while anything can still happen.
        if !self.events.is_empty() {
            self.push(self.now + JUDGE_EVERY, Event::Judge);
        }
    }

    /// Shares again the uplink of `from` and of every sender of `to` (whose
    /// downlink share changed).
    fn reshare_around(&mut self, from: Sender, to: usize) {
        self.reshare(from);
        let senders: Vec<Sender> = self.receiving[to]
            .iter()
            .map(|&id| self.transfers[id].from)
            .filter(|&s| s != from)
            .collect();
        for sender in senders {
            self.reshare(sender);
        }
    }

    /// The most transfer `id` can take on its receiver's side.
    fn receiver_cap(&self, id: usize) -> f64 {
        let to = self.transfers[id].to;
        self.fleet.nodes[to].down / self.receiving[to].len().max(1) as f64
    }

    /// Water-fills `sender`'s uplink over its transfers and reschedules the
    /// ones whose rate changed.
    fn reshare(&mut self, sender: Sender) {
        let (ids, mut left) = match sender {
            Sender::Source => (
                self.source_sending.clone(),
                match self.fleet.source {
                    Source::Holder { up } => up,
                    Source::Gcs => f64::INFINITY,
                },
            ),
            Sender::Node(up) => (self.sending[up].clone(), self.fleet.nodes[up].up),
        };
        let mut caps: Vec<(usize, f64)> =
            ids.iter().map(|&id| (id, self.receiver_cap(id))).collect();
        caps.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut rates = Vec::with_capacity(caps.len());
        let mut count = caps.len();
        for (id, cap) in caps {
            let rate = cap.min(left / count as f64);
            left = (left - rate).max(0.0);
            count -= 1;
            rates.push((id, rate));
        }
        for (id, rate) in rates {
            self.set_rate(id, rate);
        }
    }

    fn set_rate(&mut self, id: usize, rate: f64) {
        let now = self.now;
        let t = &mut self.transfers[id];
        if t.rate == rate && t.version > 0 {
            return;
        }
        t.remaining = (t.remaining - t.rate * (now - t.since)).max(0.0);
        t.since = now;
        t.rate = rate;
        t.version += 1;
        let version = t.version;
        if rate > 0.0 {
            let at = now + t.remaining / rate;
            self.push(at, Event::Done(id, version));
        }
    }
}
