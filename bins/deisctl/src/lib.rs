//! `deisctl`, the operator's command line, as a library: platform settings in discovery
//! ([`config`]), the platform's components and their order ([`components`]), the image the
//! components run, built from the project's own binaries ([`image`]), and the container
//! engines that run them ([`engine`]: Docker today, Swarm later through the same trait).

pub mod cli;
pub mod components;
pub mod config;
pub mod engine;
pub mod image;
pub mod output;

/// Why a deisctl command failed: one line for the operator.
#[derive(Debug)]
pub struct CtlError(pub String);

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CtlError {}

impl From<String> for CtlError {
    fn from(message: String) -> Self {
        CtlError(message)
    }
}

impl From<&str> for CtlError {
    fn from(message: &str) -> Self {
        CtlError(message.to_string())
    }
}

/// The result of deisctl operations.
pub type CtlResult<T> = Result<T, CtlError>;
