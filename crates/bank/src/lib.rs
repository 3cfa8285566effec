//! On-disk part bank: CDPs, CIPs and synthetic CDPs with a JSONL manifest.
//!
//! The offline stages write the bank (`decouple` stores each sample's class-dependent part,
//! CDP, and class-independent part, CIP; `edit` adds synthetic CDPs), and training reads it:
//! `decouple` / `edit` → **bank** → `combine` → `train`.
//!
//! # Layout
//!
//! ```text
//! <bank>/bank.json                              BankMeta { format_version: 1, class_names }
//! <bank>/manifest.jsonl                         one PartRecord (JSON) per line
//! <bank>/shards/<i>-of-<n>.jsonl                records of shard i/n, before merge_shards
//! <bank>/parts/cdp/<class:04>/<stem>.png        CDP: RGBA cut-out cropped to the object's box
//! <bank>/parts/cip/<class:04>/<stem>.jpg        CIP: filled background, RGB (JPEG q95 by default;
//!                                               .png, .qoi or uncompressed .ppm per CipFormat)
//! <bank>/parts/syn/<class:04>/<stem>-<tag>-v<k>.png  synthetic CDP k of a real CDP by the
//!                                               producer tagged <tag> (see [`synthetic`])
//! <bank>/parts/gen/<class:04>/<stem>-<tag>-v<k>.png  a whole image generated from a real image
//!                                               by a peer method (see [`generated`])
//! <bank>/synthetic.json                         the active synthetic producer (edit stage)
//! ```
//!
//! `<stem>` is [`part_stem`] of the sample's stable id (`source_image`): its file-system-safe
//! form plus the first 8 hex digits of its SHA-256. Part ids are `cdp/<stem>`, `cip/<stem>` and
//! `syn/<stem>-<tag>-v<k>` ([`part_id`], [`synthetic_part_id`]): deterministic, so shards never collide and reruns give the
//! same ids and files.
//!
//! A multi-label image (Pascal VOC) holds one CDP **per labelled class**, named after
//! [`layout::object_key`] (`<source_image>#c<class:04>`, so `cdp/<stem of the key>`; its
//! synthetic edits likewise), and one CIP under the plain sample id with the holes of all its
//! CDPs filled. Readers therefore never assume one CDP per `source_image`
//! ([`PartBank::cdps_of_source`]); banks with one CDP per image (every earlier bank) read as
//! before.
//!
//! # Crash safety and resuming
//!
//! [`BankWriter`] writes each image atomically first, then appends its record to the manifest
//! and fsyncs it. After a crash, [`BankWriter::open`] reloads the records, drops a torn last
//! line (counted in [`BankWriter::torn_lines`]) and [`BankWriter::contains`] lets the stage skip
//! finished samples; an orphan image is rewritten with identical bytes.
//!
//! # Shards
//!
//! Parallel processes each open a writer with their own [`Shard`] (`"i/n"`), which appends to
//! `shards/<i>-of-<n>.jsonl`; [`merge_shards`] then folds them into `manifest.jsonl`
//! atomically (sorted by id, duplicates with equal sha256 skipped, conflicts refused).
//!
//! # Reading
//!
//! [`PartBank::open`] validates everything (files exist, classes in range, links between
//! synthetic and real CDPs) with errors naming the part and manifest line, then serves lookups
//! by id, sample and class; [`PartBank::verify`] re-hashes every file. Loading a part checks
//! its bytes against the record's sha256 ([`Error::PartHash`]), once per unchanged file and
//! process.
//!
//! # One writer, inside the folder
//!
//! Every writer holds [`BankLock`] (`flock` on `<bank>/.lock`; shards share it and lock their
//! own shard) and every path read or written must resolve inside the bank ([`lock`]).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

mod bank;
mod check;
pub mod encode;
pub mod error;
pub mod generated;
pub mod layout;
pub mod lock;
mod manifest;
mod merge;
pub mod meta;
mod ppm;
mod read;
pub mod record;
mod settings;
pub mod shard;
pub mod summary;
pub mod synthetic;
pub mod verify;
mod writer;

pub use bank::PartBank;
pub use encode::{CipFormat, WriterOptions};
pub use error::{Error, Result};
pub use generated::{
    generated_part_id, select_generated, ClipFilter, GeneratedDraft, GeneratedInfo, Real, Selection,
};
pub use layout::{cdp_key, object_key, part_file, part_id, part_stem};
pub use lock::{BankLock, LOCK_FILE};
pub use merge::{merge_shards, repair, MergeReport, RepairReport};
pub use meta::{BankMeta, FORMAT_VERSION};
pub use record::{PartDraft, PartRecord, Producer};
pub use shard::Shard;
pub use summary::{BankSummary, ClassCounts};
pub use synthetic::{
    producer_tag, summarize_synthetic, synthetic_part_id, ProducerCount, SyntheticSummary,
};
pub use verify::VerifyReport;
pub use writer::BankWriter;
