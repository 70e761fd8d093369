//! What a shop brings: its documents (Markdown, HTML, plain text) split into titled
//! sections, and its catalogue (CSV or JSON) as product rows. Pure parsing, no I/O: the CLI
//! reads the files and the store writes what comes out.

mod catalog;
mod docs;

pub use catalog::{ProductRow, parse_catalog, parse_product};
pub use docs::{Section, sections};

/// Why a file could not be imported; the message names the file's row or field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(String),
    #[error("{file} is not a kind this imports ({expected})")]
    UnknownKind {
        file: String,
        expected: &'static str,
    },
}
