//! Schema version 3: scrape targets added through the API.

use super::super::*;

pub(super) fn up(tx: &mut WriteTx) -> Result<(), StoreError> {
    tx.create_table_str(&SCRAPE_TARGETS)
}
