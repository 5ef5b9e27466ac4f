//! How transfers are cut up ([`TransferOptions`]) and how a store built from a URL connects
//! ([`ConnectOptions`]).

use std::time::Duration;

/// How sinks and sources move bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferOptions {
    /// Bytes per part of a multipart upload, and per ranged GET of a large read. An object
    /// of at most this size is written with one PUT. Default 16 MiB. S3 wants parts of at
    /// least 5 MiB (all but the last) and at most 10,000 parts, so an object of more than
    /// `10_000 * part_size` bytes gets larger parts when its first message asks for it.
    pub part_size: usize,
    /// Parts uploaded, or ranges fetched, at the same time. Default 8. A sink holds at most
    /// `(concurrency + 1) * part_size` bytes of a message that is already in memory (a
    /// contiguous tensor); a source's memory is the tensor itself.
    pub concurrency: usize,
    /// Bytes a source fetches when it needs a message header, so that the header and a
    /// small body come in one request. Default 64 KiB.
    pub read_ahead: usize,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            part_size: 16 << 20,
            concurrency: 8,
            read_ahead: 64 << 10,
        }
    }
}

impl TransferOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the part size (at least 1 byte).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// Sets how many parts or ranges are in flight at once (at least 1).
    pub fn with_concurrency(mut self, requests: usize) -> Self {
        self.concurrency = requests.max(1);
        self
    }

    /// Sets how many bytes a header read fetches (at least 8).
    pub fn with_read_ahead(mut self, bytes: usize) -> Self {
        self.read_ahead = bytes.max(8);
        self
    }
}

/// How a store built from a URL talks to its server: timeouts, bounded retries with
/// exponential backoff, and any `object_store` configuration key.
///
/// The environment is read first (`AWS_*` for `s3://`, `GOOGLE_*` for `gs://`, `AZURE_*` for
/// `az://`, as `object_store`'s `from_env` builders read it); these options come after it, and
/// the URL last.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Retries of a failed request (connection refused, timeout, 5xx) before the error is
    /// reported. Default 3.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt. Default 20 s.
    pub retry_timeout: Duration,
    /// The first backoff between retries, doubled each time (with jitter). Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest backoff. Default 2 s.
    pub max_backoff: Duration,
    /// Time allowed to establish a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request (one part, one range). Default 60 s.
    pub request_timeout: Duration,
    /// Further `object_store` configuration as (key, value) pairs, for example
    /// `("aws_endpoint", "http://127.0.0.1:8333")` or `("aws_allow_http", "true")`; keys the
    /// URL's store does not know are an error.
    pub config: Vec<(String, String)>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            config: Vec::new(),
        }
    }
}

impl ConnectOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an `object_store` configuration key.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// Sets the number of retries.
    pub fn with_max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the connect and request timeouts.
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }

    /// `object_store`'s retry configuration for these options.
    pub(crate) fn retry_config(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    /// The client configuration keys these options set.
    pub(crate) fn client_config(&self) -> [(object_store::ClientConfigKey, String); 2] {
        use object_store::ClientConfigKey;
        [
            (
                ClientConfigKey::ConnectTimeout,
                format!("{}ms", self.connect_timeout.as_millis()),
            ),
            (
                ClientConfigKey::Timeout,
                format!("{}ms", self.request_timeout.as_millis()),
            ),
        ]
    }
}
