//! The fleet the simulator runs a job on: each node's links, the source,
//! the per-hop latency, the file, and what changes during the job.

/// A node's link rates, bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub up: f64,
    pub down: f64,
}

impl Link {
    /// The same rate both ways.
    pub fn symmetric(rate: f64) -> Self {
        Self {
            up: rate,
            down: rate,
        }
    }
}

/// Where the file comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// One node outside the fleet holding the file (`dfs distribute`): its
    /// uplink is shared by everyone pulling from it.
    Holder { up: f64 },
    /// Cloud storage (`dfs seed`): each reader limited only by its downlink.
    Gcs,
}

/// Something that happens to a node during the job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChangeKind {
    /// Its links change to these rates.
    Slow(Link),
    /// It stops: its transfers end, its pullers move up their lists.
    Die,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// Seconds after the job's start.
    pub at: f64,
    pub node: usize,
    pub kind: ChangeKind,
}

/// The fleet and the job.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub nodes: Vec<Link>,
    pub source: Source,
    /// Seconds from a chunk's last byte arriving at a node to the node's
    /// pullers being able to fetch it (the hop's latency and the checks).
    pub latency: f64,
    pub changes: Vec<Change>,
}

/// The file: its size and chunk size, bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileShape {
    pub size: u64,
    pub chunk: u64,
}

impl FileShape {
    pub fn chunks(&self) -> usize {
        usize::try_from(self.size.div_ceil(self.chunk)).unwrap_or(usize::MAX)
    }

    /// Bytes of chunk `index`.
    pub fn chunk_len(&self, index: usize) -> f64 {
        let start = index as u64 * self.chunk;
        (self.size - start).min(self.chunk) as f64
    }
}
