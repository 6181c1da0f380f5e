//! The aswhub daemon as a library (the `aswhub` binary is a thin shell over it, and the tests and
//! `aswctl demo` use it too): configuration, pipelines, partner links.

pub mod channel;
pub mod config;
mod events;
pub mod http;
pub mod hub;
mod inbound;
pub mod metrics;
mod outbound;
pub mod outcome;
mod park;
pub mod pool;
pub mod preflight;
pub mod process;
pub mod publish;
mod receipts;
pub mod signals;
pub mod steps;
