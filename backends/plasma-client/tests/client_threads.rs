//! One client shared by many threads; buffers and tensors outliving the client.

use std::sync::Arc;
use std::time::Duration;

use crate::client_support::{SECOND, fresh_id, stores};
use tensor_ipc::{Tensor, read_tensor, write_tensor};
use tensor_ipc_plasma_client::{PlasmaClient, PlasmaSink, PlasmaSource};

const MB: u64 = 1 << 20;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn client_is_send_and_sync() {
    assert_send_sync::<PlasmaClient>();
    assert_send_sync::<tensor_ipc_plasma_client::ObjectBuffers>();
    fn assert_send<T: Send>() {}
    assert_send::<PlasmaSink>();
    assert_send::<PlasmaSource>();
}

#[test]
fn threads_get_and_release_the_same_objects() {
    for mut store in stores(100 * MB) {
        let client = store.client();
        let ids: Vec<_> = (0..3).map(|_| fresh_id(20)).collect();
        for (k, id) in ids.iter().enumerate() {
            client
                .create_and_seal(*id, &vec![k as u8; 1000 + k], b"m")
                .unwrap();
        }
        let (tx, rx) = std::sync::mpsc::channel::<tensor_ipc::Buffer>();
        let keeper = std::thread::spawn(move || {
            // Buffers handed over from other threads, dropped here later.
            let kept: Vec<_> = rx.iter().collect();
            kept.iter().all(|b| b.len() >= 1000)
        });
        std::thread::scope(|s| {
            for t in 0..8 {
                let client = client.clone();
                let ids = ids.clone();
                let tx = tx.clone();
                s.spawn(move || {
                    for i in 0..150 {
                        let order = if (i + t) % 2 == 0 {
                            vec![ids[0], ids[1], ids[2], ids[0]]
                        } else {
                            vec![ids[2], ids[1]]
                        };
                        let got = client.get(&order, SECOND).unwrap();
                        for (o, id) in got.iter().zip(&order) {
                            let o = o.as_ref().expect("sealed object");
                            let k = ids.iter().position(|x| x == id).unwrap();
                            assert_eq!(o.data.len(), 1000 + k);
                            assert!(o.data.iter().all(|&b| b == k as u8));
                        }
                        if i % 37 == 0 {
                            tx.send(got[0].as_ref().unwrap().data.clone()).unwrap();
                        }
                        if i % 10 == 0 {
                            assert!(client.contains(ids[1]).unwrap());
                        }
                    }
                });
            }
        });
        drop(tx);
        assert!(keeper.join().unwrap());
        // Every reference went back: nothing held, and every object deletes.
        assert_eq!(client.held_objects(), 0, "{:?}", store.kind);
        for info in client.list().unwrap() {
            assert_eq!(info.ref_count, 0, "{:?}: {info:?}", store.kind);
        }
        for r in client.delete(&ids).unwrap() {
            r.unwrap();
        }
        assert!(store.alive(), "{:?}: no release too many", store.kind);
    }
}

#[test]
fn threads_create_and_seal_concurrently() {
    for store in stores(100 * MB) {
        let client = store.client();
        let written: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|t| {
                    let client = client.clone();
                    s.spawn(move || {
                        (0..40)
                            .map(|i| {
                                let id = fresh_id(21);
                                let tensor =
                                    Tensor::from_vec(vec![(t * 100 + i) as f32; 64], vec![8, 8])
                                        .unwrap();
                                write_tensor(&tensor, &mut PlasmaSink::new(&client, id)).unwrap();
                                (id, (t * 100 + i) as f32)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let reader = store.client();
        for (id, v) in written {
            let t = read_tensor(&mut PlasmaSource::get(&reader, id, SECOND).unwrap()).unwrap();
            assert_eq!(t.to_vec::<f32>().unwrap(), vec![v; 64]);
        }
        assert_eq!(client.held_objects(), 0);
        assert_eq!(reader.held_objects(), 0);
    }
}

#[test]
fn buffers_and_tensors_outlive_the_client_handle() {
    for store in stores(100 * MB) {
        let observer = store.client();
        let id = fresh_id(22);
        let (buffer, tensor) = {
            let client = store.client();
            let t = Tensor::from_vec(vec![3i32; 256], vec![256]).unwrap();
            write_tensor(&t, &mut PlasmaSink::new(&client, id)).unwrap();
            let buffer = client.get_one(id, SECOND).unwrap().unwrap().data;
            let tensor = read_tensor(&mut PlasmaSource::get(&client, id, SECOND).unwrap()).unwrap();
            (buffer, tensor)
            // `client` (the last handle) is dropped here.
        };
        let tensor = Arc::new(tensor);
        let t2 = tensor.clone();
        let in_thread = std::thread::spawn(move || t2.to_vec::<i32>().unwrap())
            .join()
            .unwrap();
        assert_eq!(in_thread, vec![3; 256]);
        assert!(!buffer.is_empty());
        // Still pinned by the buffers: the store defers the delete.
        assert!(observer.delete_one(id).is_err());
        drop(buffer);
        assert!(observer.contains(id).unwrap(), "the tensor still pins it");
        drop(tensor);
        // The last drop released it (over the dropped client's connection),
        // and the deferred delete ran.
        let mut gone = false;
        for _ in 0..500 {
            if !observer.contains(id).unwrap() {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone, "{:?}: object released and deleted", store.kind);
    }
}
