//! The web UI, built from `ui/` into `ui-dist/` and embedded in the binary (rust-embed).
//! Pure lookups: which bytes, which content type, which cache policy; `api` serves them.

use std::borrow::Cow;

#[derive(rust_embed::RustEmbed)]
#[folder = "ui-dist/"]
struct Dist;

/// One embedded file ready to serve.
#[derive(Debug)]
pub struct Asset {
    pub body: Cow<'static, [u8]>,
    pub content_type: String,
    /// `Some("gzip")` when `body` is the precompressed variant.
    pub encoding: Option<&'static str>,
    /// Hashed file names never change content: cache them for a year.
    pub immutable: bool,
}

/// Every embedded path (without the `.gz` variants).
pub fn paths() -> Vec<String> {
    Dist::iter()
        .filter(|p| !p.ends_with(".gz"))
        .map(|p| p.to_string())
        .collect()
}

/// Looks up `path` (no leading slash); prefers the gzip variant when `gzip_ok`.
pub fn asset(path: &str, gzip_ok: bool) -> Option<Asset> {
    let file = Dist::get(path)?;
    let content_type = mime_guess::from_path(path)
        .first()
        .map(|m| {
            let s = m.essence_str().to_string();
            if s.starts_with("text/") || s == "application/javascript" || s == "application/json" {
                format!("{s}; charset=utf-8")
            } else {
                s
            }
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    let immutable = path.starts_with("assets/");
    if gzip_ok && let Some(gz) = Dist::get(&format!("{path}.gz")) {
        return Some(Asset {
            body: gz.data,
            content_type,
            encoding: Some("gzip"),
            immutable,
        });
    }
    Some(Asset {
        body: file.data,
        content_type,
        encoding: None,
        immutable,
    })
}
