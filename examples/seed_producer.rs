//! The seed's C++ steps 0-2 in Rust: a tensor of N float32 values 2.0,
//! written with `write_tensor` straight into a Plasma object (id: twenty
//! `'1'` bytes) and sealed.
//!
//! ```text
//! seed_producer [--socket PATH] [--length N] [--replace]    (defaults: /tmp/plasma, 1000)
//! ```
//!
//! Prints `stored tensor: 4000 body bytes, 4192 object bytes, as 3131...31` (the C++ producer
//! prints the same line). `--replace` deletes an object already stored under the id first.

use std::process::ExitCode;

use tensor_ipc::{Tensor, tensor_size, write_tensor};
use tensor_ipc_plasma_client::{ClientOptions, ObjectId, PlasmaClient, PlasmaSink};

fn main() -> ExitCode {
    let mut socket = String::from("/tmp/plasma");
    let mut length: usize = 1000;
    let mut replace = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--replace" {
            replace = true;
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--socket", Some(v)) => socket = v,
            ("--length", Some(v)) => match v.parse() {
                Ok(n) => length = n,
                Err(_) => return usage(&format!("--length takes a count, got {v:?}")),
            },
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    match run(&socket, length, replace) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_producer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!(
        "seed_producer: {why}\nusage: seed_producer [--socket PATH] [--length N] [--replace]"
    );
    ExitCode::from(2)
}

fn run(socket: &str, length: usize, replace: bool) -> Result<(), Box<dyn std::error::Error>> {
    // Step 0: connect.
    let client = connect(socket)?;
    // Step 1: the tensor.
    let object_id = ObjectId([b'1'; 20]);
    let tensor = Tensor::from_vec(vec![2.0f32; length], vec![length])?;
    if client.contains(object_id)? {
        if !replace {
            return Err(format!(
                "object {object_id} already exists in the store at {socket}; run again with \
                 --replace to delete it first"
            )
            .into());
        }
        client.delete_one(object_id)?;
    }
    // Step 2: create an object of exactly the message size, write the
    // message into it (one copy, into shared memory), seal.
    let size = tensor_size(&tensor)?;
    write_tensor(&tensor, &mut PlasmaSink::new(&client, object_id))?;
    let body = tensor.dense_byte_len();
    println!("stored tensor: {body} body bytes, {size} object bytes, as {object_id}");
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
        "seed_producer: no store answers at {socket}; waiting up to {} s for one \
         (start it with: cargo run --release --bin plasma-store -- -s {socket})",
        wait.as_secs()
    );
    Ok(PlasmaClient::connect_with(socket, patient)?)
}
