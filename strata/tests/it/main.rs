//! The library's integration tests, one binary (each file of this folder is a module).

mod common;

mod alter;
mod diff;
mod example;
mod history;
mod import;
mod merge;
mod pipes;
mod read_remote;
mod views;
mod writers;
