//! Ranged reads: a range of an object fetched into memory the caller owns, cut into ranged
//! GETs of at most one part each, several in flight at once.

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};

use crate::error::ObjectStoreError;

/// One object being read: where it is, and the version the reader opened.
pub(crate) struct ObjectRef<'a> {
    pub(crate) store: &'a dyn ObjectStore,
    pub(crate) path: &'a Path,
    pub(crate) url: &'a str,
    /// The ETag seen when the object was opened: every later read is conditional on it, so a
    /// replaced object is [`ObjectStoreError::Changed`] rather than a mix of two versions.
    pub(crate) e_tag: Option<&'a str>,
    /// The size seen when the object was opened.
    pub(crate) size: u64,
}

/// Fills `dest` with the object's bytes from `offset`, in ranged GETs of at most `chunk`
/// bytes, `concurrency` at a time. The bytes go from the network straight into `dest`.
pub(crate) async fn fetch_into(
    object: &ObjectRef<'_>,
    offset: u64,
    dest: &mut [u8],
    chunk: usize,
    concurrency: usize,
) -> tensor_ipc::Result<()> {
    let chunk = chunk.max(1);
    // Collected first: a stream mapping with a closure here trips the compiler's `Send`
    // check of the whole future.
    let pieces: Vec<_> = dest
        .chunks_mut(chunk)
        .enumerate()
        .map(|(index, piece)| fetch_piece(object, offset + (index * chunk) as u64, piece))
        .collect();
    futures::stream::iter(pieces)
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

/// One ranged GET of exactly `dest.len()` bytes at `offset`.
async fn fetch_piece(
    object: &ObjectRef<'_>,
    offset: u64,
    dest: &mut [u8],
) -> tensor_ipc::Result<()> {
    let end = offset + dest.len() as u64;
    let store_error = |e| ObjectStoreError::from_store(object.url, "get", e);
    let options = GetOptions {
        range: Some(GetRange::Bounded(offset..end)),
        if_match: object.e_tag.map(str::to_owned),
        ..GetOptions::default()
    };
    let result = object
        .store
        .get_opts(object.path, options)
        .await
        .map_err(store_error)?;
    // Not every server honours If-Match (SeaweedFS does not): compare what it says too.
    let (e_tag, size) = (result.meta.e_tag.as_deref(), result.meta.size);
    if (object.e_tag.is_some() && e_tag.is_some() && e_tag != object.e_tag) || size != object.size {
        return Err(ObjectStoreError::Changed {
            url: object.url.to_owned(),
            detail: format!(
                "opened with ETag {:?} and {} bytes, now {e_tag:?} and {size} bytes",
                object.e_tag, object.size
            ),
        }
        .into());
    }
    if result.range.start != offset || result.range.end > end {
        return Err(ObjectStoreError::BadResponse {
            url: object.url.to_owned(),
            reason: format!(
                "asked for bytes {offset}..{end}, got {}..{}",
                result.range.start, result.range.end
            ),
        }
        .into());
    }
    let mut stream = result.into_stream();
    let mut filled = 0usize;
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(store_error)?;
        let Some(into) = dest.get_mut(filled..filled + bytes.len()) else {
            return Err(ObjectStoreError::BadResponse {
                url: object.url.to_owned(),
                reason: format!("more than the {} bytes asked for at {offset}", dest.len()),
            }
            .into());
        };
        into.copy_from_slice(&bytes);
        filled += bytes.len();
    }
    if filled < dest.len() {
        return Err(tensor_ipc::Error::Truncated {
            part: "object",
            expected: dest.len() as u64,
            available: filled as u64,
        });
    }
    Ok(())
}
