//! The command line's edge of a run's data: [`deda_train::prepare_data_for`] (reading the data
//! sets, k-shot, the bank checked, the pool) with its problems turned into usage errors and its
//! warnings and sizes printed.
use crate::data_spec::DataSpec;
use crate::UsageError;
use anyhow::Result;
use deda_train::{PreparedData, TrainConfig};

/// [`deda_train::prepare_data_for`] of `config` and its data set `spec`. Problems found in the
/// inputs are usage errors (exit code 2); warnings and the data's size are printed.
pub fn prepare_data(config: &TrainConfig, spec: &DataSpec) -> Result<PreparedData> {
    let prepared = deda_train::prepare_data_for(config, spec).map_err(|e| {
        if e.is_usage() {
            anyhow::Error::new(UsageError(e.to_string()))
        } else {
            anyhow::Error::new(e)
        }
    })?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("data: {}", deda_train::data::describe(&prepared.data));
    if let Some(pool) = &prepared.pool {
        eprintln!(
            "pool: {} CDPs, {} synthetic CDPs, {} CIPs of the {} training images ({} parts of other images left out)",
            pool.cdps, pool.synthetic_cdps, pool.cips, pool.training_images, pool.excluded
        );
    }
    if let Some(peer) = &prepared.peer_pool {
        eprintln!(
            "generated: {} {} image(s) of the {} training images by {}, {} kept by the filter ({}), {} dropped; {} class(es) emptied by the filter{}",
            peer.generated,
            peer.method,
            peer.training_images,
            peer.producer.describe(),
            peer.kept,
            peer.filter,
            peer.dropped,
            peer.emptied_classes.len(),
            if peer.emptied_classes.is_empty() {
                String::new()
            } else {
                format!(" ({}: real images only)", peer.emptied_classes.join(", "))
            }
        );
    }
    Ok(prepared)
}
