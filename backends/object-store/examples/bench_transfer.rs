//! The backend's side of `benches/object_store.py`: times writes, reads and header reads of
//! one object through a URL (configured from the environment, as every URL is).
//!
//! ```text
//! bench_transfer write URL SIZE    # a float32 tensor of SIZE bytes (1K, 256M, 1G) written
//!                                  # through ObjectStoreSink
//! bench_transfer read URL          # read_tensor through ObjectStoreSource
//! bench_transfer inspect URL       # open + read_message_header until the end (as `inspect`)
//! ```
//!
//! Prints the seconds the operation took (from the URL's parsing to the object's completion
//! or the tensor's arrival) on one line. Part size and concurrency come from
//! `TENSOR_IPC_PART_MIB`, `TENSOR_IPC_CONCURRENCY` and
//! `TENSOR_IPC_READ_AHEAD` (a SIZE) when set.

use std::time::Instant;

use tensor_ipc::{ReadOptions, Tensor, TensorSinkExt, TensorSourceExt};
use tensor_ipc_object_store::{
    ObjectStorage, ObjectStoreSink, ObjectStoreSource, Path, TransferOptions,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn storage(url: &str) -> Result<(ObjectStorage, Path)> {
    let (storage, path) = ObjectStorage::from_url(url)?;
    let mut transfer = TransferOptions::default();
    if let Ok(mib) = std::env::var("TENSOR_IPC_PART_MIB") {
        transfer = transfer.with_part_size(mib.parse::<usize>()? << 20);
    }
    if let Ok(n) = std::env::var("TENSOR_IPC_CONCURRENCY") {
        transfer = transfer.with_concurrency(n.parse()?);
    }
    if let Ok(bytes) = std::env::var("TENSOR_IPC_READ_AHEAD") {
        transfer = transfer.with_read_ahead(parse_size(&bytes)?);
    }
    Ok((storage.with_transfer(transfer), path))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, url) = match args.as_slice() {
        [mode, url, ..] => (mode.as_str(), url.as_str()),
        _ => return Err("usage: bench_transfer write|read|inspect URL [SIZE]".into()),
    };
    match mode {
        "write" => {
            let bytes = parse_size(args.get(2).ok_or("write needs a SIZE")?)?;
            let values: Vec<f32> = (0..bytes / 4).map(|i| i as f32).collect();
            let tensor = Tensor::from_vec(values, vec![bytes / 4])?;
            let start = Instant::now();
            let (storage, path) = storage(url)?;
            let mut sink = ObjectStoreSink::create(&storage, path);
            sink.write_tensor(&tensor)?;
            sink.finish()?;
            println!("{:.6}", start.elapsed().as_secs_f64());
        }
        "read" => {
            let start = Instant::now();
            let (storage, path) = storage(url)?;
            let tensor = ObjectStoreSource::open(&storage, path)?.read_tensor()?;
            let seconds = start.elapsed().as_secs_f64();
            let values = tensor.values::<f32>()?;
            let last = values.len().saturating_sub(1);
            if values.get(last).is_some_and(|&v| v != last as f32) {
                return Err("the tensor read back is not the one written".into());
            }
            println!("{seconds:.6}");
        }
        "inspect" => {
            let start = Instant::now();
            let (storage, path) = storage(url)?;
            let mut source = ObjectStoreSource::open(&storage, path)?;
            let mut messages = 0;
            while source
                .read_message_header(&ReadOptions::default())?
                .is_some()
            {
                messages += 1;
            }
            let seconds = start.elapsed().as_secs_f64();
            if messages == 0 {
                return Err("no message".into());
            }
            println!("{seconds:.6}");
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}

/// `1K`, `256M`, `1G` or a number of bytes.
fn parse_size(text: &str) -> Result<usize> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K') => (&text[..text.len() - 1], 10),
        Some(b'M') => (&text[..text.len() - 1], 20),
        Some(b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    Ok(digits.parse::<usize>()? << shift)
}
