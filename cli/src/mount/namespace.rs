//! The mount's tree: the flat namespace of committed files (`a/b/c.bin`)
//! as directories and files, with inode numbers that stay the same from
//! one listing to the next (a directory keeps its path's number, a file its
//! file id's, so a name deleted and created again is a new inode and the
//! kernel never mixes their cached pages).
//!
//! A name that cannot be a path (an empty, `.` or `..` segment) or that is
//! both a file and a directory (`a` and `a/b`: the directory wins) is left
//! out, and [`Namespace::rebuild`] says which.

use std::collections::{BTreeMap, HashMap};

use dfs_common::api::FileInfo;

/// The root directory's inode number (FUSE's).
pub const ROOT: u64 = 1;

/// What an inode is.
#[derive(Debug, Clone)]
pub enum Node {
    Dir {
        parent: u64,
        /// Name → inode, in name order.
        children: BTreeMap<String, u64>,
        /// The newest creation time of the files below, in Unix ms.
        mtime_ms: u64,
    },
    File {
        parent: u64,
        info: FileInfo,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Dir(String),
    File(String),
}

/// The tree of one listing.
#[derive(Debug)]
pub struct Namespace {
    nodes: HashMap<u64, Node>,
    inos: HashMap<Key, u64>,
    next: u64,
}

impl Default for Namespace {
    fn default() -> Self {
        let mut namespace = Self {
            nodes: HashMap::new(),
            inos: HashMap::new(),
            next: ROOT + 1,
        };
        namespace.rebuild(Vec::new());
        namespace
    }
}

impl Namespace {
    /// Replaces the tree with the one of `files`; returns the names left out.
    pub fn rebuild(&mut self, files: Vec<FileInfo>) -> Vec<String> {
        let mut old = std::mem::take(&mut self.inos);
        self.nodes.clear();
        self.inos.insert(Key::Dir(String::new()), ROOT);
        old.remove(&Key::Dir(String::new()));
        self.nodes.insert(ROOT, empty_dir(ROOT));
        let mut skipped = Vec::new();
        // Directories first, so that a file never takes a directory's name.
        let mut usable = Vec::new();
        for info in files {
            let segments: Vec<&str> = info.name.split('/').collect();
            if segments
                .iter()
                .any(|s| s.is_empty() || *s == "." || *s == "..")
            {
                skipped.push(info.name.clone());
                continue;
            }
            let mut parent = ROOT;
            for depth in 1..segments.len() {
                let path = segments[..depth].join("/");
                parent = self.dir(
                    &mut old,
                    parent,
                    &path,
                    segments[depth - 1],
                    info.created_at_ms,
                );
            }
            usable.push((parent, info));
        }
        for (parent, info) in usable {
            let leaf = info.name.rsplit('/').next().unwrap_or_default().to_owned();
            let taken = match self.nodes.get(&parent) {
                Some(Node::Dir { children, .. }) => children.contains_key(&leaf),
                _ => true,
            };
            if taken {
                skipped.push(info.name.clone());
                continue;
            }
            let key = Key::File(info.file_id.clone());
            let ino = self.ino(&mut old, key);
            self.add_child(parent, leaf, ino, info.created_at_ms);
            self.nodes.insert(ino, Node::File { parent, info });
        }
        skipped
    }

    /// The node `ino`, if it is in the tree.
    pub fn node(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The inode of `name` in directory `parent`.
    pub fn child(&self, parent: u64, name: &str) -> Option<u64> {
        match self.nodes.get(&parent)? {
            Node::Dir { children, .. } => children.get(name).copied(),
            Node::File { .. } => None,
        }
    }

    /// The directory at `path` (under `parent`, named `name` there), made
    /// when missing; its inode. A file of that name is never there yet:
    /// files are added after every directory.
    fn dir(
        &mut self,
        old: &mut HashMap<Key, u64>,
        parent: u64,
        path: &str,
        name: &str,
        mtime_ms: u64,
    ) -> u64 {
        let key = Key::Dir(path.to_owned());
        let ino = match self.inos.get(&key) {
            Some(&ino) => ino,
            None => {
                let ino = self.ino(old, key);
                self.nodes.insert(ino, empty_dir(parent));
                self.add_child(parent, name.to_owned(), ino, mtime_ms);
                ino
            }
        };
        if let Some(Node::Dir { mtime_ms: m, .. }) = self.nodes.get_mut(&ino) {
            *m = (*m).max(mtime_ms);
        }
        ino
    }

    /// The inode of `key`: the one it had in the last listing, else a new one.
    fn ino(&mut self, old: &mut HashMap<Key, u64>, key: Key) -> u64 {
        let ino = old.remove(&key).unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.inos.insert(key, ino);
        ino
    }

    fn add_child(&mut self, parent: u64, name: String, ino: u64, mtime_ms: u64) {
        if let Some(Node::Dir {
            children,
            mtime_ms: m,
            ..
        }) = self.nodes.get_mut(&parent)
        {
            children.insert(name, ino);
            *m = (*m).max(mtime_ms);
        }
    }
}

fn empty_dir(parent: u64) -> Node {
    Node::Dir {
        parent,
        children: BTreeMap::new(),
        mtime_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfs_common::api::FileState;

    fn file(name: &str, id: &str) -> FileInfo {
        FileInfo {
            file_id: id.into(),
            name: name.into(),
            size: 10,
            chunk_size: 65536,
            chunk_count: 1,
            replication: 1,
            state: FileState::Committed,
            created_at_ms: 5,
        }
    }

    fn lookup(ns: &Namespace, path: &str) -> Option<u64> {
        path.split('/')
            .try_fold(ROOT, |dir, name| ns.child(dir, name))
    }

    #[test]
    fn names_become_directories_and_files() {
        let mut ns = Namespace::default();
        let skipped = ns.rebuild(vec![
            file("a/b/c.bin", "1"),
            file("a/d.bin", "2"),
            file("top", "3"),
        ]);
        assert!(skipped.is_empty());
        let c = lookup(&ns, "a/b/c.bin").expect("a/b/c.bin");
        assert!(matches!(ns.node(c), Some(Node::File { info, .. }) if info.file_id == "1"));
        let a = lookup(&ns, "a").expect("a");
        let Some(Node::Dir {
            children,
            parent,
            mtime_ms,
        }) = ns.node(a)
        else {
            panic!("a is not a directory");
        };
        assert_eq!(children.keys().collect::<Vec<_>>(), ["b", "d.bin"]);
        assert_eq!((*parent, *mtime_ms), (ROOT, 5));
        assert!(lookup(&ns, "top").is_some());
        assert!(lookup(&ns, "a/x").is_none());
        assert!(ns.child(c, "x").is_none());
    }

    #[test]
    fn inodes_stay_across_listings_and_a_new_file_gets_a_new_one() {
        let mut ns = Namespace::default();
        ns.rebuild(vec![file("a/b.bin", "1"), file("a/c.bin", "2")]);
        let (a, b) = (lookup(&ns, "a"), lookup(&ns, "a/b.bin"));
        ns.rebuild(vec![file("a/b.bin", "1"), file("z.bin", "3")]);
        assert_eq!((lookup(&ns, "a"), lookup(&ns, "a/b.bin")), (a, b));
        assert!(lookup(&ns, "a/c.bin").is_none());
        // The same name for another file id is another inode.
        ns.rebuild(vec![file("a/b.bin", "4")]);
        assert_ne!(lookup(&ns, "a/b.bin"), b);
        assert_eq!(lookup(&ns, "a"), a);
    }

    #[test]
    fn names_that_are_no_paths_or_clash_with_a_directory_are_left_out() {
        let mut ns = Namespace::default();
        let mut skipped = ns.rebuild(vec![
            file("a", "1"),
            file("a/b", "2"),
            file("x//y", "3"),
            file("/lead", "4"),
            file("trail/", "5"),
            file("./dot", "6"),
        ]);
        skipped.sort();
        assert_eq!(skipped, ["./dot", "/lead", "a", "trail/", "x//y"]);
        assert!(matches!(
            lookup(&ns, "a").and_then(|i| ns.node(i)),
            Some(Node::Dir { .. })
        ));
        assert!(lookup(&ns, "a/b").is_some());
    }
}
