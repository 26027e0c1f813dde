//! The embedded store: one redb file holding every table of the platform.
//!
//! This is the only module that imports redb. Values are JSON documents (serde), keys are
//! `u64` or strings; callers see typed tables ([`U64Table`], [`StrTable`]) and the
//! transaction wrappers [`ReadTx`] and [`WriteTx`], never redb types. The schema version
//! lives in the `meta` table and is moved forward by [`migrations`], one file per version.
//! It deliberately knows nothing about users, HTTP or time series.

pub mod migrations;
mod tables;

pub use tables::*;

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

/// The schema version this build writes. A store with a higher version is refused.
pub const SCHEMA_VERSION: u64 = migrations::LATEST;

/// File name of the store inside the data dir.
pub const STORE_FILE: &str = "omp.redb";

/// Errors of the store, with what the operator should do where that is known.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another omp process (is `omp serve` running?): stop it first, or use the API"
    )]
    InUse { path: PathBuf },
    #[error(
        "the store at {path} was written by a newer OMP (schema version {found}, this build supports up to {supported}): run the newer omp, or restore the backup taken before the upgrade"
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error(
        "the store at {path} is corrupted or not an OMP store ({reason}): restore it from a backup or `omp store import` a dump into an empty data dir"
    )]
    Corrupted { path: PathBuf, reason: String },
    #[error("cannot open store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store operation failed: {0}")]
    Db(String),
    #[error("stored value in table {table} under key {key} cannot be read: {reason}")]
    Decode {
        table: &'static str,
        key: String,
        reason: String,
    },
    #[error("migration to schema version {version} failed: {reason}")]
    Migration { version: u64, reason: String },
    #[error("dump line {line}: {reason}")]
    Dump { line: usize, reason: String },
}

impl StoreError {
    fn db(e: impl std::fmt::Display) -> Self {
        StoreError::Db(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A cheap-clone handle on the open store.
#[derive(Clone)]
pub struct Store {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    db: redb::Database,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store file inside `data_dir` and migrates it to
    /// [`SCHEMA_VERSION`]. A newer, locked or corrupted store gives a clear error, never a panic.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Open {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(STORE_FILE);
        let opened = {
            let p = path.clone();
            // redb reports corruption as errors; the catch is a last line of defence so that a
            // damaged file can never crash the server with a panic message instead of advice.
            std::panic::catch_unwind(move || redb::Database::create(&p))
        };
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(StoreError::InUse { path });
            }
            Ok(Err(e)) => {
                if let redb::DatabaseError::Storage(redb::StorageError::Io(io)) = e {
                    // redb reports a foreign file (bad magic number) as InvalidData.
                    if io.kind() == std::io::ErrorKind::InvalidData {
                        return Err(StoreError::Corrupted {
                            path,
                            reason: io.to_string(),
                        });
                    }
                    return Err(StoreError::Open { path, source: io });
                }
                return Err(StoreError::Corrupted {
                    path,
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(StoreError::Corrupted {
                    path,
                    reason: "the file could not be parsed".into(),
                });
            }
        };
        let store = Store {
            inner: std::sync::Arc::new(Inner { db, path }),
        };
        migrations::run(&store)?;
        Ok(store)
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub fn read<T>(&self, f: impl FnOnce(&ReadTx) -> Result<T>) -> Result<T> {
        let tx = self.inner.db.begin_read().map_err(StoreError::db)?;
        f(&ReadTx { tx })
    }

    /// Runs `f` in a write transaction; commits when `f` returns `Ok`, aborts otherwise.
    /// The error type is the caller's so that services can abort with their own errors.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let tx = self.inner.db.begin_write().map_err(StoreError::db)?;
        let mut w = WriteTx { tx };
        let out = f(&mut w)?;
        w.tx.commit().map_err(StoreError::db)?;
        Ok(out)
    }

    /// The schema version recorded in the store.
    pub fn schema_version(&self) -> Result<u64> {
        self.read(|tx| Ok(tx.get(&META, "schema_version")?.unwrap_or(0)))
    }

    /// Writes a consistent logical dump (JSON lines) of every table to `out`.
    /// The first line is a header with the schema version; then one line per row.
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<u64> {
        self.read(|tx| {
            let header = serde_json::json!({
                "omp_store_dump": 1,
                "schema_version": tx.get::<u64>(&META, "schema_version")?.unwrap_or(0),
            });
            let mut rows = 0;
            let mut line = |v: serde_json::Value| -> Result<()> {
                serde_json::to_writer(&mut *out, &v).map_err(StoreError::db)?;
                out.write_all(b"\n").map_err(StoreError::db)
            };
            line(header)?;
            for t in ALL_U64_TABLES {
                for (k, v) in tx.scan_raw_u64(t)? {
                    line(serde_json::json!({"table": t.name(), "key": k, "value": v}))?;
                    rows += 1;
                }
            }
            for t in ALL_STR_TABLES {
                for (k, v) in tx.scan_raw_str(t)? {
                    line(serde_json::json!({"table": t.name(), "key": k, "value": v}))?;
                    rows += 1;
                }
            }
            Ok(rows)
        })
    }

    /// Loads a dump written by [`Store::export`] into this store, which must hold no user
    /// data yet (a fresh data dir). All rows are written in one transaction: a bad dump
    /// changes nothing.
    pub fn import(&self, input: &mut dyn std::io::BufRead) -> Result<u64> {
        let not_empty = self.read(|tx| Ok(!tx.is_empty(&USERS)?))?;
        if not_empty {
            return Err(StoreError::Dump {
                line: 0,
                reason: "the target store already holds data: import only into an empty data dir"
                    .into(),
            });
        }
        let mut lines = std::io::BufRead::lines(input).enumerate();
        let header: serde_json::Value = match lines.next() {
            Some((_, Ok(l))) => serde_json::from_str(&l).map_err(|e| StoreError::Dump {
                line: 1,
                reason: format!("bad header: {e}"),
            })?,
            _ => {
                return Err(StoreError::Dump {
                    line: 1,
                    reason: "empty dump".into(),
                });
            }
        };
        if header.get("omp_store_dump").and_then(|v| v.as_u64()) != Some(1) {
            return Err(StoreError::Dump {
                line: 1,
                reason: "not an OMP store dump (missing omp_store_dump header)".into(),
            });
        }
        let version = header
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if version != SCHEMA_VERSION {
            return Err(StoreError::Dump {
                line: 1,
                reason: format!(
                    "dump has schema version {version}, this build writes {SCHEMA_VERSION}: import it with the omp version that exported it"
                ),
            });
        }
        self.write(|tx| {
            // The fresh store already holds its own meta rows; the dump's replace them.
            let mut rows = 0;
            for (i, l) in lines {
                let n = i + 1;
                let l = l.map_err(|e| StoreError::Dump {
                    line: n,
                    reason: e.to_string(),
                })?;
                if l.trim().is_empty() {
                    continue;
                }
                let row: DumpRow = serde_json::from_str(&l).map_err(|e| StoreError::Dump {
                    line: n,
                    reason: e.to_string(),
                })?;
                let bytes = serde_json::to_vec(&row.value).map_err(StoreError::db)?;
                if let Some(t) = ALL_U64_TABLES.iter().find(|t| t.name() == row.table) {
                    let k = row.key.as_u64().ok_or_else(|| StoreError::Dump {
                        line: n,
                        reason: format!("table {} needs a number key", row.table),
                    })?;
                    tx.put_raw_u64(t, k, &bytes)?;
                } else if let Some(t) = ALL_STR_TABLES.iter().find(|t| t.name() == row.table) {
                    let k = row.key.as_str().ok_or_else(|| StoreError::Dump {
                        line: n,
                        reason: format!("table {} needs a string key", row.table),
                    })?;
                    tx.put_raw_str(t, k, &bytes)?;
                } else {
                    return Err(StoreError::Dump {
                        line: n,
                        reason: format!("unknown table {}", row.table),
                    });
                }
                rows += 1;
            }
            Ok(rows)
        })
    }
}

#[derive(serde::Deserialize)]
struct DumpRow {
    table: String,
    key: serde_json::Value,
    value: serde_json::Value,
}

/// A read transaction: a consistent snapshot of every table.
pub struct ReadTx {
    tx: redb::ReadTransaction,
}

/// A write transaction; committed by [`Store::write`].
pub struct WriteTx {
    tx: redb::WriteTransaction,
}

fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &dyn std::fmt::Display,
    b: &[u8],
) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| StoreError::Decode {
        table,
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(StoreError::db)
}

/// Opens a table for reading; a table that was never written reads as empty.
macro_rules! read_table {
    ($tx:expr, $def:expr, $empty:expr) => {
        match $tx.open_table($def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok($empty),
            Err(e) => return Err(StoreError::db(e)),
        }
    };
}

impl ReadTx {
    /// Reads one value from a string-keyed table.
    pub fn get<T: DeserializeOwned>(&self, t: &StrTable, key: &str) -> Result<Option<T>> {
        let table = read_table!(self.tx, t.def(), None);
        match table.get(key).map_err(StoreError::db)? {
            Some(v) => Ok(Some(decode(t.name(), &key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Reads one value from a number-keyed table.
    pub fn get_u64<T: DeserializeOwned>(&self, t: &U64Table, key: u64) -> Result<Option<T>> {
        let table = read_table!(self.tx, t.def(), None);
        match table.get(key).map_err(StoreError::db)? {
            Some(v) => Ok(Some(decode(t.name(), &key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every row of a string-keyed table, in key order.
    pub fn all<T: DeserializeOwned>(&self, t: &StrTable) -> Result<Vec<(String, T)>> {
        let table = read_table!(self.tx, t.def(), Vec::new());
        let mut out = Vec::new();
        for row in table.iter().map_err(StoreError::db)? {
            let (k, v) = row.map_err(StoreError::db)?;
            out.push((
                k.value().to_string(),
                decode(t.name(), &k.value(), v.value())?,
            ));
        }
        Ok(out)
    }

    /// Every row of a number-keyed table, in key order.
    pub fn all_u64<T: DeserializeOwned>(&self, t: &U64Table) -> Result<Vec<(u64, T)>> {
        self.range_u64(t, 0.., usize::MAX, false)
    }

    /// Up to `limit` rows of a number-keyed table within `range`, newest first when `rev`.
    pub fn range_u64<T: DeserializeOwned>(
        &self,
        t: &U64Table,
        range: impl std::ops::RangeBounds<u64>,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<(u64, T)>> {
        let table = read_table!(self.tx, t.def(), Vec::new());
        let iter = table.range(range).map_err(StoreError::db)?;
        let mut out = Vec::new();
        let mut push = |row: std::result::Result<_, redb::StorageError>| -> Result<bool> {
            let (k, v): (redb::AccessGuard<u64>, redb::AccessGuard<&[u8]>) =
                row.map_err(StoreError::db)?;
            out.push((k.value(), decode(t.name(), &k.value(), v.value())?));
            Ok(out.len() < limit)
        };
        if rev {
            for row in iter.rev() {
                if !push(row)? {
                    break;
                }
            }
        } else {
            for row in iter {
                if !push(row)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Number of rows in a table.
    pub fn len(&self, t: &U64Table) -> Result<u64> {
        let table = read_table!(self.tx, t.def(), 0);
        table.len().map_err(StoreError::db)
    }

    /// True when a number-keyed table has no rows.
    pub fn is_empty(&self, t: &U64Table) -> Result<bool> {
        Ok(self.len(t)? == 0)
    }

    fn scan_raw_u64(&self, t: &U64Table) -> Result<Vec<(u64, serde_json::Value)>> {
        self.all_u64(t)
    }

    fn scan_raw_str(&self, t: &StrTable) -> Result<Vec<(String, serde_json::Value)>> {
        self.all(t)
    }
}

impl WriteTx {
    /// Reads one value from a string-keyed table (sees this transaction's writes).
    pub fn get<T: DeserializeOwned>(&self, t: &StrTable, key: &str) -> Result<Option<T>> {
        let table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        match table.get(key).map_err(StoreError::db)? {
            Some(v) => Ok(Some(decode(t.name(), &key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Reads one value from a number-keyed table (sees this transaction's writes).
    pub fn get_u64<T: DeserializeOwned>(&self, t: &U64Table, key: u64) -> Result<Option<T>> {
        let table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        match table.get(key).map_err(StoreError::db)? {
            Some(v) => Ok(Some(decode(t.name(), &key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every row of a string-keyed table (sees this transaction's writes).
    pub fn all<T: DeserializeOwned>(&self, t: &StrTable) -> Result<Vec<(String, T)>> {
        let table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(StoreError::db)? {
            let (k, v) = row.map_err(StoreError::db)?;
            out.push((
                k.value().to_string(),
                decode(t.name(), &k.value(), v.value())?,
            ));
        }
        Ok(out)
    }

    /// Every row of a number-keyed table (sees this transaction's writes).
    pub fn all_u64_rw<T: DeserializeOwned>(&self, t: &U64Table) -> Result<Vec<(u64, T)>> {
        let table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(StoreError::db)? {
            let (k, v) = row.map_err(StoreError::db)?;
            out.push((k.value(), decode(t.name(), &k.value(), v.value())?));
        }
        Ok(out)
    }

    /// The last row of a number-keyed table.
    pub fn last_u64<T: DeserializeOwned>(&self, t: &U64Table) -> Result<Option<(u64, T)>> {
        let table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        match table.last().map_err(StoreError::db)? {
            Some((k, v)) => Ok(Some((k.value(), decode(t.name(), &k.value(), v.value())?))),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(&mut self, t: &StrTable, key: &str, value: &T) -> Result<()> {
        let bytes = encode(value)?;
        self.put_raw_str(t, key, &bytes)
    }

    pub fn put_u64<T: Serialize>(&mut self, t: &U64Table, key: u64, value: &T) -> Result<()> {
        let bytes = encode(value)?;
        self.put_raw_u64(t, key, &bytes)
    }

    /// Removes a row; true when it existed.
    pub fn delete(&mut self, t: &StrTable, key: &str) -> Result<bool> {
        let mut table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        Ok(table.remove(key).map_err(StoreError::db)?.is_some())
    }

    /// Removes a row; true when it existed.
    pub fn delete_u64(&mut self, t: &U64Table, key: u64) -> Result<bool> {
        let mut table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        Ok(table.remove(key).map_err(StoreError::db)?.is_some())
    }

    /// Makes sure a table exists (used by migrations so that readers see it).
    pub fn create_table_u64(&mut self, t: &U64Table) -> Result<()> {
        self.tx
            .open_table(t.def())
            .map_err(StoreError::db)
            .map(drop)
    }

    /// Makes sure a table exists (used by migrations so that readers see it).
    pub fn create_table_str(&mut self, t: &StrTable) -> Result<()> {
        self.tx
            .open_table(t.def())
            .map_err(StoreError::db)
            .map(drop)
    }

    /// Next value of a named counter kept in `meta` (starts at 1).
    pub fn next_id(&mut self, counter: &str) -> Result<u64> {
        let key = format!("seq:{counter}");
        let n: u64 = self.get(&META, &key)?.unwrap_or(0) + 1;
        self.put(&META, &key, &n)?;
        Ok(n)
    }

    fn put_raw_u64(&mut self, t: &U64Table, key: u64, bytes: &[u8]) -> Result<()> {
        let mut table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        table.insert(key, bytes).map_err(StoreError::db).map(drop)
    }

    fn put_raw_str(&mut self, t: &StrTable, key: &str, bytes: &[u8]) -> Result<()> {
        let mut table = self.tx.open_table(t.def()).map_err(StoreError::db)?;
        table.insert(key, bytes).map_err(StoreError::db).map(drop)
    }
}

/// A table keyed by `u64` holding JSON values.
pub struct U64Table {
    def: TableDefinition<'static, u64, &'static [u8]>,
    name: &'static str,
}

/// A table keyed by strings holding JSON values.
pub struct StrTable {
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    name: &'static str,
}

impl U64Table {
    pub const fn new(name: &'static str) -> Self {
        U64Table {
            def: TableDefinition::new(name),
            name,
        }
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
    fn def(&self) -> TableDefinition<'static, u64, &'static [u8]> {
        self.def
    }
}

impl StrTable {
    pub const fn new(name: &'static str) -> Self {
        StrTable {
            def: TableDefinition::new(name),
            name,
        }
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
    fn def(&self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        self.def
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_export_import() {
        let a = tempfile::tempdir().unwrap();
        let store = Store::open(a.path()).unwrap();
        store
            .write(|tx| {
                tx.put_u64(&USERS, 1, &serde_json::json!({"username": "x"}))?;
                tx.put(&SETTINGS, "k", &serde_json::json!([1, 2]))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let mut dump = Vec::new();
        let rows = store.export(&mut dump).unwrap();
        assert!(rows >= 2);
        let b = tempfile::tempdir().unwrap();
        let other = Store::open(b.path()).unwrap();
        other.import(&mut dump.as_slice()).unwrap();
        let mut dump2 = Vec::new();
        other.export(&mut dump2).unwrap();
        assert_eq!(
            String::from_utf8(dump).unwrap(),
            String::from_utf8(dump2).unwrap()
        );
        // A second import into a store that now holds data is refused and changes nothing.
        let err = other.import(&mut b"{}".as_slice()).unwrap_err();
        assert!(err.to_string().contains("empty data dir"), "{err}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let d = tempfile::tempdir().unwrap();
        {
            let store = Store::open(d.path()).unwrap();
            store
                .write(|tx| tx.put(&META, "schema_version", &(SCHEMA_VERSION + 1)))
                .unwrap();
        }
        let err = Store::open(d.path()).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
        assert!(err.to_string().contains("newer OMP"), "{err}");
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(STORE_FILE), vec![0x5a; 70_000]).unwrap();
        let err = Store::open(d.path()).err().unwrap();
        assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
    }

    #[test]
    fn second_open_reports_in_use() {
        let d = tempfile::tempdir().unwrap();
        let _s = Store::open(d.path()).unwrap();
        let err = Store::open(d.path()).err().unwrap();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    }
}
