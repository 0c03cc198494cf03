//! Temp files under `DATA_DIR/tmp/` that delete themselves unless persisted.

use std::path::{Path, PathBuf};

/// A file in the temp directory, removed when dropped unless
/// [`TempPath::persist`] moved it into place first.
#[derive(Debug)]
pub(crate) struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    /// A fresh, unique name in `tmp_dir` (nothing is created yet). `label`
    /// only makes leftovers easier to recognise.
    pub(crate) fn new(tmp_dir: &Path, label: &str) -> Self {
        let name = format!("{label}.{}.part", uuid::Uuid::new_v4().simple());
        Self {
            path: tmp_dir.join(name),
            armed: true,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Atomically renames the file to `dest` and disarms the guard. Blocking.
    pub(crate) fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(path = %self.path.display(), error = %err, "could not remove temp file");
            }
        }
    }
}
