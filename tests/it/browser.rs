//! Browser test (Playwright + Debian's Chromium, headless) against the real server. Slow, so
//! it runs when OMP_BROWSER_TESTS=1 (as `.ci/run` sets); without it the test says so.

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

#[test]
fn browser_login_language_user_audit() {
    if std::env::var("OMP_BROWSER_TESTS").as_deref() != Ok("1") {
        eprintln!("browser test not run: set OMP_BROWSER_TESTS=1 (.ci/run does)");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/e2e.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "run `npm ci` in tests/browser first"
    );
    let shots = std::env::var("OMP_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let s = TestServer::start();
    let out = Command::new("node")
        .arg(&script)
        .current_dir(root.join("tests/browser"))
        .env("OMP_URL", &s.base)
        .env("OMP_ADMIN_USER", "admin")
        .env("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("OMP_SCREENSHOT_DIR", &shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser e2e failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(shots.join("audit.png").exists());
}
