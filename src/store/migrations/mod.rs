//! Schema migrations, one file per version. `run` moves a store forward to [`LATEST`] in
//! one write transaction per step, and refuses a store written by a newer build.

mod v1;
mod v2;
mod v3;

use super::{META, Store, StoreError, WriteTx};

type Step = fn(&mut WriteTx) -> Result<(), StoreError>;

/// Each entry upgrades a store from `version - 1` to `version`.
const STEPS: &[(u64, Step)] = &[(1, v1::up), (2, v2::up), (3, v3::up)];

/// The newest schema version this build knows.
pub const LATEST: u64 = STEPS[STEPS.len() - 1].0;

/// Brings the store to [`LATEST`].
pub(super) fn run(store: &Store) -> Result<(), StoreError> {
    let found = store.schema_version()?;
    if found > LATEST {
        return Err(StoreError::TooNew {
            path: store.path().to_path_buf(),
            found,
            supported: LATEST,
        });
    }
    for (version, step) in STEPS.iter().filter(|(v, _)| *v > found) {
        store
            .write(|tx| {
                step(tx)?;
                tx.put(&META, "schema_version", version)
            })
            .map_err(|e| StoreError::Migration {
                version: *version,
                reason: e.to_string(),
            })?;
        tracing::info!(version, "Store schema migrated.");
    }
    Ok(())
}
