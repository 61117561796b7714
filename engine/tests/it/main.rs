//! The engine's integration tests, one binary (each file of this folder is a module).

mod common;

mod decoders;
mod deltas;
mod merge;
mod tables;
