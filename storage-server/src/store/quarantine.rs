//! `DATA_DIR/quarantine/`: chunks found corrupt or missing, set aside so
//! they are never served again, kept for a look until the naming server
//! has the chunk re-replicated and asks for them to go (or
//! [`RETENTION`] passes).

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::fs;

use super::error::{IoContext, StoreError};

/// How long a quarantined chunk is kept at most.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Moves whichever of `data` and `meta` exist into `dir` as `id` and
/// `id.meta`, stamped with the time of the move; whether there was any.
pub(super) async fn set_aside(
    dir: &Path,
    id: &str,
    data: &Path,
    meta: &Path,
) -> Result<bool, StoreError> {
    let mut moved = false;
    for (from, name) in [(data, id.to_owned()), (meta, format!("{id}.meta"))] {
        let to = dir.join(name);
        match fs::rename(from, &to).await {
            Ok(()) => {
                moved = true;
                let stamp = std::fs::File::options()
                    .write(true)
                    .open(&to)
                    .and_then(|file| file.set_modified(SystemTime::now()));
                stamp.context(|| format!("stamping {}", to.display()))?;
            }
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err).context(|| format!("quarantining {}", from.display())),
        }
    }
    Ok(moved)
}

/// Removes `id` (data and meta) from `dir`; whether it was there.
pub(super) async fn remove(dir: &Path, id: &str) -> Result<bool, StoreError> {
    let mut removed = false;
    for name in [id.to_owned(), format!("{id}.meta")] {
        let path = dir.join(name);
        match fs::remove_file(&path).await {
            Ok(()) => removed = true,
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err).context(|| format!("removing {}", path.display())),
        }
    }
    Ok(removed)
}

/// The ids in `dir`, and of those the ones set aside before `before`.
pub(super) async fn list(
    dir: &Path,
    before: SystemTime,
) -> Result<(BTreeSet<String>, BTreeSet<String>), StoreError> {
    let mut all = BTreeSet::new();
    let mut old = BTreeSet::new();
    let mut entries = fs::read_dir(dir)
        .await
        .context(|| format!("listing {}", dir.display()))?;
    while let Some(entry) = entries
        .next_entry()
        .await
        .context(|| format!("listing {}", dir.display()))?
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = name.strip_suffix(".meta").unwrap_or(&name).to_owned();
        let stamped = entry.metadata().await.and_then(|m| m.modified());
        if stamped.is_ok_and(|at| at < before) {
            old.insert(id.clone());
        }
        all.insert(id);
    }
    Ok((all, old))
}
