//! Errors the node's API returns. Each carries a one-line message meant for the user; the HTTP layer maps the kind
//! to a status code and the CLI prints the message.

/// An API failure.
/// A file that would be published with metadata in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptMetadata {
    /// The file on the publisher's machine (as the user named it).
    pub file: String,
    /// What it would keep, e.g. `"PDF document info and XMP (Author, Creator, Producer, dates)"`.
    pub kept: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong (bad path, empty title, malformed magnet...). Nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for is not known to this node.
    #[error("{0}")]
    NotFound(String),
    /// A remote node could not be reached or refused us.
    #[error("{0}")]
    Unreachable(String),
    /// Files would keep metadata after scrubbing and the user did not allow it. Nothing was copied or signed.
    #[error("{}", metadata_kept_message(files, hidden.as_deref()))]
    MetadataKept {
        files: Vec<KeptMetadata>,
        /// The line about hidden files that would be left out, if any.
        hidden: Option<String>,
    },
    /// The node failed doing something it should have been able to do.
    #[error("{0}")]
    Internal(String),
}

fn metadata_kept_message(files: &[KeptMetadata], hidden: Option<&str>) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|k| format!("{}: {}", k.file, k.kept))
        .collect();
    let hidden = hidden.map(|h| format!("; {h}")).unwrap_or_default();
    format!(
        "nothing was published: {} file(s) would keep metadata that can identify you: {}{hidden}. Remove it, or \
         publish them as they are with --allow-metadata",
        files.len(),
        list.join("; ")
    )
}

impl ApiError {
    pub(crate) fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(format!("{context}: {error}"))
    }
}

impl From<crate::catalog::CatalogError> for ApiError {
    fn from(error: crate::catalog::CatalogError) -> Self {
        ApiError::internal("catalog", error)
    }
}

impl From<crate::keystore::KeystoreError> for ApiError {
    fn from(error: crate::keystore::KeystoreError) -> Self {
        use crate::keystore::KeystoreError;
        match error {
            KeystoreError::NotFound(_) => ApiError::NotFound(error.to_string()),
            KeystoreError::Io { .. } => ApiError::internal("author identities", error),
            _ => ApiError::Invalid(error.to_string()),
        }
    }
}

impl From<kolokol_store::StoreError> for ApiError {
    fn from(error: kolokol_store::StoreError) -> Self {
        ApiError::internal("catalog", error)
    }
}
