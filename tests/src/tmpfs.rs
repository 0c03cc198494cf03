//! [`Tmpfs`]: a small tmpfs mounted on a test's directory, so a storage
//! node's disk can really fill up (the kernel answers ENOSPC; nothing is
//! faked). Mounting needs root (or `CAP_SYS_ADMIN`), as the test machines
//! run the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A tmpfs of a fixed size on a directory; unmounted when dropped, even
/// when a test fails (lazily, so a process still holding files in it does
/// not keep it mounted).
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on the existing, empty `dir`.
    pub fn mount(dir: &Path, size: u64) -> Result<Self> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700"))
            .arg("dfs-test")
            .arg(dir)
            .output()
            .context("cannot run mount")?;
        if !output.status.success() {
            bail!(
                "cannot mount a tmpfs on {} (these tests run as root): {}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match Command::new("umount").arg("--lazy").arg(&self.dir).output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "umount {}: {}",
                self.dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(err) => eprintln!("umount {}: {err}", self.dir.display()),
        }
    }
}
