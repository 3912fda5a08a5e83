//! Test hosts shared by the integration tests (and the benchmark): real HTTP
//! and TCP servers on loopback, real sshd processes with their own keys,
//! optionally each in its own network namespace.
//!
//! Each test binary uses a part of this module.
#![allow(dead_code)]

pub mod http;
pub mod sshd;
