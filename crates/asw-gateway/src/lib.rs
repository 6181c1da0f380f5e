//! The aswhub daemon as a library (the `aswhub` binary is a thin shell over it, and the tests and
//! `aswctl demo` use it too): configuration, pipelines, partner links.

mod answers;
pub mod channel;
mod claims;
pub mod config;
mod events;
mod execute;
pub mod http;
pub mod hub;
mod inbound;
mod incoming;
mod lanes;
pub mod metrics;
mod mover;
mod outbound;
pub mod outcome;
mod park;
mod plan;
pub mod pool;
pub mod preflight;
pub mod process;
pub mod publish;
mod receipts;
pub mod signals;
#[cfg(test)]
mod testing;
pub mod work;
