//! Tidy checks of the source tree: module docs, no ignored tests, layering.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources(sub: &str) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(sub);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

#[test]
fn every_module_starts_with_a_doc_line() {
    for (p, text) in sources("src").into_iter().chain(sources("tests")) {
        if p.components().any(|c| c.as_os_str() == "node_modules") {
            continue;
        }
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! line saying what it does",
            p.display()
        );
    }
}

#[test]
fn no_ignored_tests() {
    let needle = ["#[", "ignore"].concat();
    for (p, text) in sources("src").into_iter().chain(sources("tests")) {
        assert!(
            !text.contains(&needle),
            "{} ignores a test: gate slow tests by an environment variable instead",
            p.display()
        );
    }
}

#[test]
fn layering_is_respected() {
    // (crate, the only module path allowed to import it)
    let rules = [
        ("redb::", "src/store/"),
        ("axum::", "src/api/"),
        ("rust_embed", "src/ui.rs"),
        ("argon2::", "src/auth/password.rs"),
    ];
    for (p, text) in sources("src") {
        let rel = p
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .to_string_lossy()
            .to_string();
        for (krate, home) in rules {
            if text.contains(krate) {
                assert!(rel.starts_with(home), "{rel} uses {krate}: only {home} may");
            }
        }
        if rel == "src/model.rs" {
            for io in ["std::fs", "std::net", "tokio"] {
                assert!(!text.contains(io), "model must not do I/O ({io})");
            }
        }
    }
}
