//! Shared harness of the `aws_*` tests: one moto server per test binary, seeding through the
//! real SDK, and a fault-injecting proxy. Each test binary uses a different part of it.
#![allow(dead_code)]

pub mod apiserver;
pub mod cluster;
pub mod controller;
pub mod gitops;
pub mod moto;
pub mod policy_apiserver;
pub mod proxy;
