//! A store wrapper that records every request made through it, can fail one upload part,
//! and can have no multipart uploads (as a plain HTTP server): how the tests see what the
//! sink and source send.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use tensor_ipc_object_store::object_store::path::Path;
use tensor_ipc_object_store::object_store::{
    self, CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Put { len: usize },
    StartUpload,
    Part { len: usize },
    Complete,
    Abort,
    Get { range: Option<Range<u64>> },
    Head,
}

/// Records calls to `inner`; fails the part numbered `fail_part` (from 1) if set.
#[derive(Debug)]
pub struct Recording {
    inner: Arc<dyn ObjectStore>,
    calls: Arc<Mutex<Vec<Call>>>,
    fail_part: Arc<AtomicUsize>,
    parts: Arc<AtomicUsize>,
    no_multipart: AtomicBool,
}

impl std::fmt::Display for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recording({})", self.inner)
    }
}

impl Recording {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            calls: Default::default(),
            fail_part: Arc::new(AtomicUsize::new(0)),
            parts: Arc::new(AtomicUsize::new(0)),
            no_multipart: AtomicBool::new(false),
        })
    }

    /// Answers every multipart upload with `NotImplemented`, as object_store's HTTP store does.
    pub fn without_multipart(inner: Arc<dyn ObjectStore>) -> Arc<Recording> {
        let recording = Self::new(inner);
        recording.no_multipart.store(true, Ordering::SeqCst);
        recording
    }

    /// Makes the `n`th part uploaded from now on fail (0: none).
    pub fn fail_part(&self, n: usize) {
        self.parts.store(0, Ordering::SeqCst);
        self.fail_part.store(n, Ordering::SeqCst);
    }

    /// The calls so far, forgetting them.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }

    /// Bytes fetched by GETs in `calls` (a GET without a range counts the whole object as
    /// `u64::MAX`).
    pub fn bytes_fetched(calls: &[Call]) -> u64 {
        calls
            .iter()
            .map(|c| match c {
                Call::Get { range: Some(r) } => r.end - r.start,
                Call::Get { range: None } => u64::MAX,
                _ => 0,
            })
            .fold(0u64, u64::saturating_add)
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

struct RecordingUpload {
    inner: Box<dyn MultipartUpload>,
    calls: Arc<Mutex<Vec<Call>>>,
    fail_part: Arc<AtomicUsize>,
    parts: Arc<AtomicUsize>,
}

impl std::fmt::Debug for RecordingUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingUpload")
    }
}

#[async_trait]
impl MultipartUpload for RecordingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.calls.lock().unwrap().push(Call::Part {
            len: data.content_length(),
        });
        let number = self.parts.fetch_add(1, Ordering::SeqCst) + 1;
        if number == self.fail_part.load(Ordering::SeqCst) {
            return Box::pin(async move {
                Err(object_store::Error::Generic {
                    store: "Recording",
                    source: format!("part {number} refused by the test").into(),
                })
            });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.calls.lock().unwrap().push(Call::Complete);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.calls.lock().unwrap().push(Call::Abort);
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for Recording {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.record(Call::Put {
            len: payload.content_length(),
        });
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.record(Call::StartUpload);
        if self.no_multipart.load(Ordering::SeqCst) {
            return Err(object_store::Error::NotImplemented {
                operation: "`put_multipart_opts`".into(),
                implementer: self.to_string(),
            });
        }
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(RecordingUpload {
            inner,
            calls: self.calls.clone(),
            fail_part: self.fail_part.clone(),
            parts: self.parts.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head {
            self.record(Call::Head);
        } else {
            let range = match &options.range {
                Some(GetRange::Bounded(r)) => Some(r.clone()),
                None => None,
                Some(other) => panic!("unexpected range {other:?}"),
            };
            self.record(Call::Get { range });
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
