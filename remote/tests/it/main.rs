//! The remote crate's integration tests, one binary (each file of this folder is a module).

mod common;

mod cloud;
mod conformance;
mod faults;
mod fsck;
mod gc;
mod gc_files;
mod hardening;
mod probe;
mod simulation;
