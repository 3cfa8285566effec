//! On-disk part bank: CDPs, CIPs and synthetic CDPs with a JSONL manifest.
