//! The audit log: every mutation and login, hash-chained so that an edited, inserted or
//! deleted record is detected by [`Audit::verify`] (and `omp audit verify`).
//!
//! Chain: `hash = SHA-256(prev_hash ‖ "\n" ‖ canonical JSON of the record without hash)`,
//! `prev_hash` of the first record is 64 zeros, and the head (`seq`, `hash`) is kept in the
//! `meta` table so that removing the newest records is detected too. The core functions
//! ([`chain_hash`], [`verify_records`]) are pure; [`Audit`] stores through `store`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{AuditRecord, AuditResult};
use crate::store::{AUDIT, META, Store, StoreError, WriteTx};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HEAD_KEY: &str = "audit_head";

/// What is recorded; the chain fields are filled by [`Audit::append`].
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    pub success: bool,
    pub status: i64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Head {
    seq: u64,
    hash: String,
}

/// The hash of a record given its predecessor's hash. The field order is fixed by the
/// struct below, which makes the JSON canonical.
pub fn chain_hash(r: &AuditRecord) -> String {
    #[derive(Serialize)]
    struct Canon<'a> {
        seq: u64,
        time: i64,
        actor: &'a str,
        action: &'a str,
        target: &'a str,
        source: &'a str,
        result: AuditResult,
        status: i64,
        detail: &'a str,
    }
    let canon = Canon {
        seq: r.seq,
        time: r.time,
        actor: &r.actor,
        action: &r.action,
        target: &r.target,
        source: &r.source,
        result: r.result,
        status: r.status,
        detail: &r.detail,
    };
    let mut h = Sha256::new();
    h.update(r.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(&canon).unwrap_or_default());
    data_encoding::HEXLOWER.encode(&h.finalize())
}

/// Result of a chain verification.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verification {
    pub ok: bool,
    pub checked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    pub message: String,
}

/// Checks records given in sequence order against each other and against the stored head.
pub fn verify_records(
    records: impl IntoIterator<Item = (u64, AuditRecord)>,
    head: Option<(u64, String)>,
) -> Verification {
    let mut prev_hash = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut checked = 0;
    let bad = |seq: u64, checked: u64, message: String| Verification {
        ok: false,
        checked,
        first_bad_seq: Some(seq),
        message,
    };
    for (key, r) in records {
        if key != r.seq {
            return bad(
                key,
                checked,
                format!("record stored under {key} claims seq {}", r.seq),
            );
        }
        if r.seq != expected_seq {
            return bad(
                expected_seq,
                checked,
                format!("record {expected_seq} is missing (next is {})", r.seq),
            );
        }
        if r.prev_hash != prev_hash {
            return bad(
                r.seq,
                checked,
                format!("record {} does not link to its predecessor", r.seq),
            );
        }
        if chain_hash(&r) != r.hash {
            return bad(r.seq, checked, format!("record {} was modified", r.seq));
        }
        prev_hash = r.hash;
        expected_seq += 1;
        checked += 1;
    }
    let last = expected_seq - 1;
    match head {
        Some((seq, hash)) if seq != last || (last > 0 && hash != prev_hash) => bad(
            last + 1,
            checked,
            format!(
                "the chain ends at record {last} but the head says {seq}: records were removed"
            ),
        ),
        None if last > 0 => bad(last, checked, "the chain head is missing".into()),
        _ => Verification {
            ok: true,
            checked,
            first_bad_seq: None,
            message: format!("{checked} records, chain intact"),
        },
    }
}

/// Filters for listing and exporting.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    /// Free text matched against actor, action, target, source and detail.
    pub q: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub result: Option<AuditResult>,
    /// Milliseconds since the epoch, inclusive.
    pub since: Option<i64>,
    /// Milliseconds since the epoch, exclusive.
    pub until: Option<i64>,
}

impl Filter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let has = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
        self.actor.as_deref().is_none_or(|a| r.actor == a)
            && self
                .action
                .as_deref()
                .is_none_or(|a| action_matches(&r.action, a))
            && self.result.is_none_or(|x| r.result == x)
            && self.since.is_none_or(|t| r.time >= t)
            && self.until.is_none_or(|t| r.time < t)
            && self.q.as_deref().filter(|q| !q.is_empty()).is_none_or(|q| {
                has(&r.actor, q)
                    || has(&r.action, q)
                    || has(&r.target, q)
                    || has(&r.source, q)
                    || has(&r.detail, q)
            })
    }
}

/// `users.create` matches exactly; `users.` or `users.*` match every action under `users`.
fn action_matches(action: &str, filter: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None if filter.ends_with('.') => action.starts_with(filter),
        None => action == filter,
    }
}

/// The audit service.
#[derive(Clone)]
pub struct Audit {
    store: Store,
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Audit { store }
    }

    /// Appends one record in its own transaction.
    pub fn append(&self, e: Entry) -> Result<AuditRecord, StoreError> {
        self.store.write(|tx| append_in(tx, e, now_ms()))
    }

    /// Newest-first page of records matching `f`, and the number of matches.
    pub fn list(
        &self,
        f: &Filter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<AuditRecord>, u64), StoreError> {
        // The log is scanned newest first in batches; fine for the sizes a small site makes
        // (a million records scan in about a second) and it keeps no second index to drift.
        let mut out = Vec::new();
        let mut total = 0u64;
        self.scan_rev(|r| {
            if f.matches(&r) {
                if total as usize >= offset && out.len() < limit {
                    out.push(r);
                }
                total += 1;
            }
            true
        })?;
        Ok((out, total))
    }

    /// Calls `f` on records from newest to oldest until it returns false.
    pub fn scan_rev(&self, mut f: impl FnMut(AuditRecord) -> bool) -> Result<(), StoreError> {
        const BATCH: usize = 2048;
        let mut upper = u64::MAX;
        loop {
            let batch: Vec<(u64, AuditRecord)> = self
                .store
                .read(|tx| tx.range_u64(&AUDIT, ..upper, BATCH, true))?;
            let Some((last, _)) = batch.last() else {
                return Ok(());
            };
            upper = *last;
            let n = batch.len();
            for (_, r) in batch {
                if !f(r) {
                    return Ok(());
                }
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }

    /// Verifies the whole chain in one consistent snapshot.
    pub fn verify(&self) -> Result<Verification, StoreError> {
        self.store.read(|tx| {
            let head: Option<Head> = tx.get(&META, HEAD_KEY)?;
            let mut records = Vec::new();
            // Decode errors (a record edited into invalid JSON) count as tampering.
            let rows = match tx.all_u64::<AuditRecord>(&AUDIT) {
                Ok(rows) => rows,
                Err(StoreError::Decode { key, .. }) => {
                    return Ok(Verification {
                        ok: false,
                        checked: 0,
                        first_bad_seq: key.parse().ok(),
                        message: format!("record {key} is not a valid audit record"),
                    });
                }
                Err(e) => return Err(e),
            };
            records.extend(rows);
            Ok(verify_records(records, head.map(|h| (h.seq, h.hash))))
        })
    }
}

/// Appends inside an existing transaction (so a mutation and its audit record can commit
/// together where that matters).
pub fn append_in(tx: &mut WriteTx, e: Entry, time: i64) -> Result<AuditRecord, StoreError> {
    let head: Option<Head> = tx.get(&META, HEAD_KEY)?;
    let (seq, prev_hash) = match head {
        Some(h) => (h.seq + 1, h.hash),
        None => (1, GENESIS.to_string()),
    };
    let mut r = AuditRecord {
        seq,
        time,
        actor: e.actor,
        action: e.action,
        target: e.target,
        source: e.source,
        result: if e.success {
            AuditResult::Success
        } else {
            AuditResult::Failure
        },
        status: e.status,
        detail: e.detail,
        prev_hash,
        hash: String::new(),
    };
    r.hash = chain_hash(&r);
    tx.put_u64(&AUDIT, seq, &r)?;
    tx.put(
        &META,
        HEAD_KEY,
        &Head {
            seq,
            hash: r.hash.clone(),
        },
    )?;
    Ok(r)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Writes records as CSV with a header row.
pub fn write_csv(out: &mut dyn std::io::Write, records: &[AuditRecord]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "seq", "time", "actor", "action", "target", "source", "result", "status", "detail", "hash",
    ])?;
    for r in records {
        let time = chrono::DateTime::from_timestamp_millis(r.time)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let result = match r.result {
            AuditResult::Success => "success",
            AuditResult::Failure => "failure",
        };
        // A leading =, +, - or @ would be a formula in a spreadsheet: neutralise it.
        let cell = |s: &str| {
            if s.starts_with(['=', '+', '-', '@']) {
                format!("'{s}")
            } else {
                s.to_string()
            }
        };
        w.write_record([
            r.seq.to_string(),
            time,
            cell(&r.actor),
            cell(&r.action),
            cell(&r.target),
            cell(&r.source),
            result.to_string(),
            r.status.to_string(),
            cell(&r.detail),
            r.hash.clone(),
        ])?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<(u64, AuditRecord)> {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let audit = Audit::new(store.clone());
        for i in 0..n {
            audit
                .append(Entry {
                    actor: "admin".into(),
                    action: "users.create".into(),
                    target: format!("user{i}"),
                    success: true,
                    status: 201,
                    ..Default::default()
                })
                .unwrap();
        }
        assert!(audit.verify().unwrap().ok);
        store.read(|tx| tx.all_u64(&AUDIT)).unwrap()
    }

    fn head(v: &[(u64, AuditRecord)]) -> Option<(u64, String)> {
        v.last().map(|(s, r)| (*s, r.hash.clone()))
    }

    #[test]
    fn tampering_is_detected() {
        let good = chain(5);
        assert!(verify_records(good.clone(), head(&good)).ok);
        type Tamper = fn(&mut Vec<(u64, AuditRecord)>) -> Option<(u64, String)>;
        // (what, tamper, first bad seq)
        let cases: &[(&str, Tamper, u64)] = &[
            (
                "edit a field",
                |v| {
                    let h = head(v);
                    v[2].1.target = "someone-else".into();
                    h
                },
                3,
            ),
            (
                "delete a middle record",
                |v| {
                    let h = head(v);
                    v.remove(1);
                    h
                },
                2,
            ),
            (
                "delete the newest record",
                |v| {
                    let h = head(v);
                    v.pop();
                    h
                },
                5,
            ),
            (
                "rehash an edited record",
                |v| {
                    let h = head(v);
                    v[0].1.actor = "mallory".into();
                    v[0].1.hash = chain_hash(&v[0].1);
                    h
                },
                2,
            ),
            ("drop the head", |_| None, 5),
        ];
        for (what, tamper, want) in cases {
            let mut v = good.clone();
            let h = tamper(&mut v);
            let res = verify_records(v, h);
            assert!(!res.ok, "{what}");
            assert_eq!(res.first_bad_seq, Some(*want), "{what}: {}", res.message);
        }
    }

    #[test]
    fn empty_chain_is_ok() {
        assert!(verify_records(Vec::new(), None).ok);
    }

    #[test]
    fn filters() {
        let recs = chain(3);
        let f = Filter {
            q: Some("USER1".into()),
            ..Default::default()
        };
        assert_eq!(recs.iter().filter(|(_, r)| f.matches(r)).count(), 1);
        let f = Filter {
            action: Some("users.".into()),
            result: Some(AuditResult::Failure),
            ..Default::default()
        };
        assert_eq!(recs.iter().filter(|(_, r)| f.matches(r)).count(), 0);
    }

    #[test]
    fn csv_neutralises_formulas() {
        let mut r = chain(1).remove(0).1;
        r.target = "=cmd()".into();
        let mut out = Vec::new();
        write_csv(&mut out, &[r]).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("'=cmd()"), "{s}");
        assert!(s.starts_with("seq,time,actor"));
    }
}
