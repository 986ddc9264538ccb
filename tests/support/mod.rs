//! Shared harness of the tests and benchmarks: access rules letting the test namespace assume a
//! role, one moto server per test binary with seeding through the real SDK, the benchmarks'
//! memory probe, a fault-injecting proxy, a fake apiserver for fast reconcile tests, the real
//! cluster of the e2e tests and the frame of their ProtectedSecret scenarios, the Helm chart
//! installed in it, a proxy that stalls Lease requests, `dpo controller` as a process or in this
//! one, a client that counts its requests, the GitOps tools' judges, the test control plane
//! started on demand with the requests a controller made of it and of AWS, and the policy
//! benchmarks' world of Ingresses and StorageClasses. Each binary uses a part of it.
#![allow(dead_code)]

pub mod access;
pub mod apiserver;
pub mod bench;
pub mod chart;
pub mod cluster;
pub mod control_plane;
pub mod controller;
pub mod gitops;
pub mod lease_stall;
pub mod moto;
pub mod process;
pub mod protected_secrets;
pub mod proxy;
pub mod rbac;
pub mod running;
pub mod tally;
pub mod traffic;
pub mod world;
