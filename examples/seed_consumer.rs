//! The Rust reader of the seed's object: gets the object of twenty `'1'`
//! bytes and reads its tensor zero-copy (the tensor's data is the shared
//! memory), printing shape, dtype and a checksum.
//!
//! ```text
//! seed_consumer [--socket PATH] [--timeout-ms MS]   (defaults: /tmp/plasma, 5000; -1 waits forever)
//! ```

use std::process::ExitCode;
use std::time::Duration;

use tensor_ipc::{DType, read_tensor};
use tensor_ipc_plasma_client::{ClientOptions, ObjectId, PlasmaClient, PlasmaSource};

fn main() -> ExitCode {
    let mut socket = String::from("/tmp/plasma");
    let mut timeout_ms: i64 = 5000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--socket", Some(v)) => socket = v,
            ("--timeout-ms", Some(v)) => match v.parse() {
                Ok(n) => timeout_ms = n,
                Err(_) => return usage(&format!("--timeout-ms takes milliseconds, got {v:?}")),
            },
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    match run(&socket, timeout_ms) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_consumer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("seed_consumer: {why}\nusage: seed_consumer [--socket PATH] [--timeout-ms MS]");
    ExitCode::from(2)
}

fn run(socket: &str, timeout_ms: i64) -> Result<(), Box<dyn std::error::Error>> {
    let client = connect(socket)?;
    let object_id = ObjectId([b'1'; 20]);
    let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
    let mut source = PlasmaSource::get(&client, object_id, timeout).map_err(|e| {
        format!("{e} (waited {timeout_ms} ms; run seed_producer first, or pass --timeout-ms -1)")
    })?;
    let tensor = read_tensor(&mut source)?;
    // Sum in f64 of the values (float types), or of the raw bytes otherwise.
    let checksum: f64 = match tensor.dtype() {
        DType::Float32 => tensor.values::<f32>()?.iter().map(|&v| f64::from(v)).sum(),
        DType::Float64 => tensor.values::<f64>()?.iter().sum(),
        _ => tensor.as_bytes().iter().map(|&b| f64::from(b)).sum(),
    };
    println!(
        "object {object_id}: shape={:?} dtype={} checksum={checksum}",
        tensor.shape(),
        tensor.dtype().name()
    );
    Ok(())
}

/// Connects, saying so on stderr when the store is not there yet (the client keeps trying
/// for a few seconds while a store starts).
fn connect(socket: &str) -> Result<PlasmaClient, Box<dyn std::error::Error>> {
    let once = ClientOptions {
        connect_retries: 1,
        ..ClientOptions::default()
    };
    if let Ok(client) = PlasmaClient::connect_with(socket, once) {
        return Ok(client);
    }
    let patient = ClientOptions::default();
    let wait = patient.retry_delay * patient.connect_retries;
    eprintln!(
        "seed_consumer: no store answers at {socket}; waiting up to {} s for one \
         (start it with: cargo run --release --bin plasma-store -- -s {socket})",
        wait.as_secs()
    );
    Ok(PlasmaClient::connect_with(socket, patient)?)
}
