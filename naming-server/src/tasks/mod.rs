//! Background loops every naming-server replica runs beside the HTTP
//! service. Each calls down into the domain, which makes sure one replica
//! at a time does each piece of work.
//!
//! - [`reaper`]: expires pending uploads never finalized.
//! - [`repair`]: re-replicates the chunks of lost storage nodes.

pub mod reaper;
pub mod repair;
