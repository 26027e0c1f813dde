//! The one integration test binary: every test drives the real `omp` binary (server and
//! CLI) on loopback. Modules group the tests by capability.

#![allow(unreachable_pub)]

mod browser;
mod foundation;
mod hosts;
mod lifecycle;
mod metrics;
mod promql_compat;
mod ssh;
mod terminal;
mod tidy;
mod util;
