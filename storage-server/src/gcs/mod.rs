//! Reading Cloud Storage objects into the chunk store: how the head of a
//! `dfs seed` chain gets the file.
//!
//! - [`client`]: [`GcsClient`], built from the config. With
//!   `STORAGE_EMULATOR_HOST` it talks plain HTTP to the emulator without
//!   credentials; otherwise HTTPS to `storage.googleapis.com` with
//!   Application Default Credentials, looked up on first use only.
//!   [`GcsClient::stat`] reads an object's size, CRC32C and generation.
//! - [`download`]: [`GcsClient::download`] fetches an object chunk by chunk:
//!   `parallel` ranged requests in flight, each covering `batch` consecutive
//!   chunks, every body streamed and split at chunk boundaries straight into
//!   [`ChunkStore::write`](crate::store::ChunkStore::write). Chunks already
//!   stored are skipped, each landed chunk is reported at once, transient
//!   failures are retried from the first chunk not yet stored, and the
//!   chunks' combined CRC32C is checked against the object's.
//! - [`error`]: [`GcsError`], what a caller sees.
//!
//! Every body byte passes the client's [`Throttle`](crate::throttle::Throttle)
//! (`TEST_ONLY_LIMIT_GCS_BANDWIDTH`), shared by all downloads of the node.

pub mod client;
pub mod download;
pub mod error;

pub use client::{GcsClient, ObjectInfo};
pub use download::{ChunkDone, ChunkSpec, DownloadOptions, Downloaded, chunk_layout, combine_crcs};
pub use error::GcsError;
