//! Re-reading a stored chunk against its meta: what the scrubber and a
//! requested verification do.

use std::io::ErrorKind;
use std::path::Path;

use tokio::fs::{self, File};
use tokio::io::AsyncReadExt;

use super::error::{IoContext, StoreError};
use crate::throttle::Throttle;

/// Bytes read between two throttle checks.
const PIECE: usize = 1024 * 1024;

/// What re-reading a chunk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its bytes match its meta.
    Sound,
    /// Its bytes, their length, or its meta are not what was stored.
    Corrupt,
    /// Its meta is there, its data file is gone.
    Missing,
    /// Neither is there: the node does not hold it.
    Absent,
}

/// The size and CRC32C a meta file says, or `None` when it is unreadable.
#[derive(serde::Deserialize)]
struct Meta {
    size: u64,
    crc32c: u32,
}

/// Re-reads `data_path` against `meta_path`, taking every byte from
/// `throttle` first.
pub(super) async fn verify(
    data_path: &Path,
    meta_path: &Path,
    throttle: &Throttle,
) -> Result<Verdict, StoreError> {
    let meta = match fs::read(meta_path).await {
        Ok(bytes) => serde_json::from_slice::<Meta>(&bytes).ok(),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => return Err(err).context(|| format!("reading {}", meta_path.display())),
    };
    let mut file = match File::open(data_path).await {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            let has_meta = fs::try_exists(meta_path).await.unwrap_or(true);
            return Ok(if has_meta {
                Verdict::Missing
            } else {
                Verdict::Absent
            });
        }
        Err(err) => return Err(err).context(|| format!("opening {}", data_path.display())),
    };
    let Some(meta) = meta else {
        return Ok(Verdict::Corrupt);
    };
    let mut buf = vec![0u8; PIECE];
    let (mut size, mut crc) = (0u64, 0u32);
    loop {
        throttle.take(PIECE as u64).await;
        let n = file
            .read(&mut buf)
            .await
            .context(|| format!("reading {}", data_path.display()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        if size > meta.size {
            break;
        }
    }
    Ok(if size == meta.size && crc == meta.crc32c {
        Verdict::Sound
    } else {
        Verdict::Corrupt
    })
}
