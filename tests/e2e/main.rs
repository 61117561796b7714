//! End-to-end tests: the real `strata` binary, run in temporary folders as people run it.

mod backends;
mod harness;

mod bad_files;
mod cli;
mod clouds;
mod concurrency;
mod corruption;
mod diff;
mod export;
mod gc;
mod history;
mod import;
mod init;
mod interrupted;
mod merge;
mod names;
mod other_readers;
mod read_in_place;
mod refs;
mod refusals;
mod remote;
mod revisions;
mod s3;
mod tables;
