//! Email [`Attachments`]: file name → base64 content, measured by decoded size; `Debug` shows
//! names and sizes, never content.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Serialize;

use crate::error::Error;

/// Email attachments: file name → base64 content, as the App API takes them.
///
/// `Debug` lists file names and sizes, not content.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachments(BTreeMap<String, String>);

impl Attachments {
    /// Adds a file from its raw bytes (base64-encoded here, standard alphabet with padding).
    /// A file of the same name is replaced.
    pub fn insert_bytes(&mut self, filename: impl Into<String>, content: &[u8]) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        self.0.insert(filename.into(), encoded);
    }

    /// Adds a file whose content is already base64 (standard alphabet, padded). Refuses text
    /// that is not valid base64.
    pub fn insert_base64(
        &mut self,
        filename: impl Into<String>,
        encoded: impl Into<String>,
    ) -> Result<(), Error> {
        let encoded = encoded.into();
        if base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .is_err()
        {
            return Err(Error::invalid(
                "app.transactional.attachments",
                "attachment content is not valid standard base64",
            ));
        }
        self.0.insert(filename.into(), encoded);
        Ok(())
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// File names and their base64 content.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The decoded size of all files together, in bytes.
    pub fn total_bytes(&self) -> usize {
        self.0.values().map(|v| decoded_len(v)).sum()
    }
}

/// Decoded length of padded standard base64 (content was checked when it was added).
fn decoded_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|&b| b == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

impl fmt::Debug for Attachments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(name, content)| (name, format!("<{} bytes>", decoded_len(content)))),
            )
            .finish()
    }
}
