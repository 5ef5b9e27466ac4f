//! The seed's C++ steps 0-2 in Rust: a tensor of N float32 values 2.0,
//! written with `write_tensor` straight into a Plasma object (id: twenty
//! `'1'` bytes) and sealed.
//!
//! ```text
//! seed_producer [--socket PATH] [--length N]     (defaults: /tmp/plasma, 1000)
//! ```

use std::process::ExitCode;

use tensor_ipc::{Tensor, tensor_size, write_tensor};
use tensor_ipc_plasma_client::ObjectId;
use tensor_ipc_plasma_client::{PlasmaClient, PlasmaSink};

fn main() -> ExitCode {
    let mut socket = String::from("/tmp/plasma");
    let mut length: usize = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--socket", Some(v)) => socket = v,
            ("--length", Some(v)) => match v.parse() {
                Ok(n) => length = n,
                Err(_) => return usage(&format!("--length takes a count, got {v:?}")),
            },
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    match run(&socket, length) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_producer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("seed_producer: {why}\nusage: seed_producer [--socket PATH] [--length N]");
    ExitCode::from(2)
}

fn run(socket: &str, length: usize) -> Result<(), Box<dyn std::error::Error>> {
    // Step 0: connect.
    let client = PlasmaClient::connect(socket)?;
    // Step 1: the tensor.
    let object_id = ObjectId([b'1'; 20]);
    let tensor = Tensor::from_vec(vec![2.0f32; length], vec![length])?;
    // Step 2: create an object of exactly the message size, write the
    // message into it (one copy, into shared memory), seal.
    let size = tensor_size(&tensor)?;
    write_tensor(&tensor, &mut PlasmaSink::new(&client, object_id))?;
    println!("stored tensor of {size} bytes as {object_id}");
    Ok(())
}
