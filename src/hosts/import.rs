//! Batch import of hosts from CSV: parse and validate every row first (per-row, per-field
//! errors), and only when all rows are valid turn them into SSH pushes. Sans-IO.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::push::{PushRequest, validate_all};

/// Most rows one import takes.
pub const MAX_ROWS: usize = 1000;

/// One row's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct RowReport {
    pub line: u64,
    pub address: String,
    pub ok: bool,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

const COLUMNS: &[&str] = &[
    "address",
    "port",
    "user",
    "password",
    "labels",
    "groups",
    "prefix",
    "data_dir",
    "expected_host_key",
];

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("label {part:?} is not key=value"))?;
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

/// Parses and validates `csv`; returns the reports and, for valid rows, the requests.
/// `private_key` (and `passphrase`) serve rows without a password.
pub fn parse(
    csv_text: &str,
    private_key: Option<&str>,
    passphrase: Option<&str>,
) -> Result<(Vec<RowReport>, Vec<PushRequest>), String> {
    // Comments and blank lines go before parsing; `lines` maps records back to file lines.
    let (lines, kept): (Vec<u64>, Vec<&str>) = csv_text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i as u64 + 1, l))
        .unzip();
    let text = kept.join("\n");
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .clone();
    let cols: Vec<String> = headers.iter().map(|h| h.to_lowercase()).collect();
    if let Some(bad) = cols.iter().find(|c| !COLUMNS.contains(&c.as_str())) {
        return Err(format!(
            "unknown column {bad:?}: the columns are {}",
            COLUMNS.join(", ")
        ));
    }
    for need in ["address", "user"] {
        if !cols.iter().any(|c| c == need) {
            return Err(format!("the header row needs a {need} column"));
        }
    }
    let mut reports = Vec::new();
    let mut requests = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("CSV error: {e}"))?;
        let line = lines.get(reports.len() + 1).copied().unwrap_or(0);
        if reports.len() >= MAX_ROWS {
            return Err(format!("more than {MAX_ROWS} rows: split the file"));
        }
        let get = |c: &str| {
            cols.iter()
                .position(|x| x == c)
                .and_then(|i| rec.get(i))
                .unwrap_or("")
                .to_string()
        };
        let mut errors = Vec::new();
        let mut err = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.into(),
                message,
            })
        };
        let port = match get("port").as_str() {
            "" => 22,
            p => p.parse::<u16>().unwrap_or_else(|_| {
                err(
                    "port",
                    format!("port {p:?} is not a number from 1 to 65535"),
                );
                22
            }),
        };
        let labels = parse_labels(&get("labels")).unwrap_or_else(|e| {
            err("labels", e);
            BTreeMap::new()
        });
        let groups: Vec<String> = get("groups")
            .split(';')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect();
        let password = Some(get("password")).filter(|p| !p.is_empty());
        let key = if password.is_none() {
            private_key.map(String::from)
        } else {
            None
        };
        let or = |v: String, d: &str| if v.is_empty() { d.to_string() } else { v };
        let req = PushRequest {
            address: get("address"),
            port,
            user: get("user"),
            password,
            private_key: key,
            passphrase: passphrase.map(String::from),
            labels,
            groups,
            prefix: or(get("prefix"), "/opt/omp-agent"),
            data_dir: or(get("data_dir"), "/var/lib/omp-agent"),
            expected_host_key: Some(get("expected_host_key")).filter(|k| !k.is_empty()),
        };
        for (field, message) in validate_all(&req) {
            let message = if field == "password" {
                "no password in this row and no private key given for the import".to_string()
            } else {
                message
            };
            errors.push(FieldError {
                field: field.into(),
                message,
            });
        }
        let target = format!("{}:{}", req.address, req.port);
        if let Some(first) = seen.get(&target) {
            errors.push(FieldError {
                field: "address".into(),
                message: format!("{target} is already on line {first}"),
            });
        } else {
            seen.insert(target, line);
        }
        let ok = errors.is_empty();
        reports.push(RowReport {
            line,
            address: req.address.clone(),
            ok,
            errors,
        });
        if ok {
            requests.push(req);
        }
    }
    if reports.is_empty() {
        return Err("the CSV has no rows below the header".into());
    }
    Ok((reports, requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checked_field_by_field() {
        let csv = "address,port,user,password,labels,groups\n\
                   # a comment\n\
                   10.0.0.1,22,root,pw,env=prod;tier=db,db;prod\n\
                   -oProxyCommand=x,22,root,pw,,\n\
                   10.0.0.3,99999,ro ot,,bad-label,\n\
                   10.0.0.1,22,root,pw,,\n";
        let (reports, reqs) = parse(csv, None, None).unwrap();
        assert_eq!(reports.len(), 4);
        assert!(reports[0].ok, "{:?}", reports[0]);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].labels.get("tier").map(String::as_str), Some("db"));
        assert_eq!(reqs[0].groups, vec!["db", "prod"]);
        assert_eq!(reports[1].errors[0].field, "address");
        let fields: Vec<&str> = reports[2].errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["port", "labels", "user", "password"],
            "{:?}",
            reports[2]
        );
        assert!(
            reports[3].errors[0].message.contains("already on line 3"),
            "{:?}",
            reports[3]
        );
    }

    #[test]
    fn key_serves_rows_without_password() {
        let (reports, reqs) = parse("address,user\nh1,root\n", Some("KEY"), None).unwrap();
        assert!(reports[0].ok);
        assert_eq!(reqs[0].private_key.as_deref(), Some("KEY"));
    }

    #[test]
    fn bad_files_are_named() {
        assert!(
            parse("address,colour\nx,y\n", None, None)
                .unwrap_err()
                .contains("unknown column")
        );
        assert!(
            parse("user\nroot\n", None, None)
                .unwrap_err()
                .contains("address")
        );
        assert!(
            parse("address,user\n", None, None)
                .unwrap_err()
                .contains("no rows")
        );
        assert!(
            parse("address,user\na,b,c\n", None, None)
                .unwrap_err()
                .contains("CSV error")
        );
    }
}
