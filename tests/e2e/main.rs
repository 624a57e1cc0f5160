//! End-to-end tests of the `palisade` binary: parity with transformers, TensorBoard's own reader,
//! exact resume, clear errors on bad input, and reports rendered by headless Chromium. One test
//! binary keeps link time down.

mod bad_input;
mod bundle;
mod cli;
mod common;
mod distributed;
mod object_store;
mod pali;
mod parity;
mod plan;
mod precision;
mod pretrained;
mod recipe;
mod reliability;
mod report;
mod score;
mod step_plan;
mod sweep;
mod training;
mod user_data;
mod video;
