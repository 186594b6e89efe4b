//! What every store reads and writes with: a cursor read through document by
//! document, and how many statements one command carries.

use crate::error::Error;

/// Statements per `update` command: far below the 16 MiB message limit.
pub const BATCH: usize = 500;

/// Feeds every document of `cursor` to `each`; a document that cannot be
/// decoded is logged and skipped, a lost server is an error named by `context`.
pub async fn each_doc<T: serde::de::DeserializeOwned + Send + Sync>(
    mut cursor: mongodb::Cursor<T>,
    context: &str,
    mut each: impl FnMut(T),
) -> Result<(), Error> {
    while cursor.advance().await.map_err(Error::mongo(context))? {
        match cursor.deserialize_current() {
            Ok(d) => each(d),
            Err(e) => {
                tracing::warn!(error = %e, context, "a document could not be decoded and is skipped")
            }
        }
    }
    Ok(())
}
