//! `deda bank summary|verify|merge|repair`: looking after a part bank.
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use deda_bank::{merge_shards, repair, PartBank};
use std::path::PathBuf;

/// Part-bank subcommands.
#[derive(Subcommand)]
pub enum BankCommand {
    /// Per-class counts of CDPs, CIPs and synthetic CDPs.
    Summary {
        /// The bank folder.
        bank: PathBuf,
    },
    /// Re-hash every part file against the manifest; exit 1 if any is damaged.
    Verify {
        /// The bank folder.
        bank: PathBuf,
    },
    /// Fold the shard manifests written with `--shard i/n` into manifest.jsonl.
    Merge {
        /// The bank folder.
        bank: PathBuf,
    },
    /// Repair what a crashed writer left: cut a torn last manifest line, remove temporary
    /// files of interrupted writes (any writing stage does this too when it opens the bank).
    Repair {
        /// The bank folder.
        bank: PathBuf,
    },
}

/// Runs one bank subcommand.
pub fn run(cmd: BankCommand) -> Result<()> {
    match cmd {
        BankCommand::Summary { bank } => {
            let b = open(&bank)?;
            println!("{}", b.summary().to_string().trim_end());
            println!("manifest sha256 {}", b.manifest_hash());
        }
        BankCommand::Verify { bank } => {
            let report = open(&bank)?.verify();
            println!("{report}");
            if !report.is_ok() {
                bail!(
                    "{} damaged part(s) in {}",
                    report.damaged.len(),
                    bank.display()
                );
            }
        }
        BankCommand::Repair { bank } => {
            let report =
                repair(&bank).with_context(|| format!("repairing part bank {}", bank.display()))?;
            println!("{report}");
        }
        BankCommand::Merge { bank } => {
            let report = merge_shards(&bank)
                .with_context(|| format!("merging shards of {}", bank.display()))?;
            println!("{report}");
            if !report.missing_shards.is_empty() {
                bail!(
                    "shard(s) missing: {}",
                    report
                        .missing_shards
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(())
}

fn open(bank: &std::path::Path) -> Result<PartBank> {
    PartBank::open(bank).with_context(|| format!("opening part bank {}", bank.display()))
}
