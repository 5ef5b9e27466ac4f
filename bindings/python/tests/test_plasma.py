"""tensor_ipc.plasma: the API of pyarrow.plasma, zero-copy, lifetimes, threads,
signals, a dying store, and the peers (pyarrow 11's client, Arrow 11's store,
the seed's C++ and Rust programs)."""

import gc
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import tensor_ipc.plasma as plasma
from conftest import ROOT, OUR_STORE, has_pyarrow, run_python, running_store

needs_pyarrow = pytest.mark.needs_pyarrow

TENSOR_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64"]


def oid(tag):
    return plasma.ObjectID(bytes([tag]) * 20)


def mapping_of(address):
    """The /proc/self/maps line whose range holds ``address``: (start, end, perms, path)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                return start, end, fields[1], " ".join(fields[5:])
    raise AssertionError("address %#x is not mapped" % address)


def fill(buf, data):
    """Writes ``data`` at the start of a writable buffer (pyarrow.Buffer or memoryview)."""
    np.frombuffer(buf, np.uint8)[:len(data)] = np.frombuffer(data, np.uint8)


def data_address(array):
    return array.__array_interface__["data"][0]


def assert_in_store_segment(address, capacity):
    start, end, perms, path = mapping_of(address)
    assert perms.endswith("s"), "a shared mapping: %s %s" % (perms, path)
    assert end - start >= capacity, "the store's whole segment is mapped (%d bytes)" % (end - start)
    return path


# --------------------------------------------------------------------------------------
# The API


def test_object_id():
    a = plasma.ObjectID(20 * b"a")
    assert a == plasma.ObjectID(20 * b"a") and a != plasma.ObjectID(20 * b"b")
    assert a != "foo" and not (a == 20 * b"a")
    assert a < plasma.ObjectID(20 * b"b") and sorted([oid(3), oid(1)]) == [oid(1), oid(3)]
    assert len({a, plasma.ObjectID(20 * b"a"), oid(1)}) == 2
    assert a.binary() == 20 * b"a"
    assert repr(oid(0xab)) == "ObjectID(" + "ab" * 20 + ")"
    assert pickle.loads(pickle.dumps(a)) == a
    assert type(pickle.loads(pickle.dumps(a))) is plasma.ObjectID
    for bad in [19 * b"a", 21 * b"a", "a" * 20, 20, bytearray(20)]:
        with pytest.raises(ValueError):
            plasma.ObjectID(bad)
    ids = {plasma.ObjectID.from_random() for _ in range(1000)}
    assert len(ids) == 1000
    with pytest.warns(DeprecationWarning, match="^Plasma"):
        plasma.ObjectID(20 * b"c")


def test_exception_classes():
    assert issubclass(plasma.PlasmaConnectionError, OSError)
    assert issubclass(plasma.PlasmaTimeoutError, TimeoutError)
    for name in ["PlasmaObjectExists", "PlasmaObjectNotFound", "PlasmaStoreFull"]:
        assert issubclass(getattr(plasma, name), plasma.PlasmaError)
        assert getattr(plasma, name).__module__ == "tensor_ipc.plasma"
    if has_pyarrow():
        import pyarrow as pa
        assert issubclass(plasma.PlasmaError, pa.lib.ArrowException)
    e = plasma.PlasmaStoreFull("x")
    assert type(pickle.loads(pickle.dumps(e))) is plasma.PlasmaStoreFull


def test_connect_failure_is_quick_and_clear(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(plasma.PlasmaConnectionError, match="could not connect"):
        plasma.connect(str(tmp_path / "nothing"), num_retries=2)
    assert time.monotonic() - t0 < 2


def test_create_seal_get(client):
    a = oid(1)
    buf = client.create(a, 5, b"meta")
    fill(buf, b"hello")
    assert not client.contains(a)
    assert client.list()[a]["state"] == "created"
    client.seal(a)
    assert client.contains(a)
    assert client.list()[a]["state"] == "sealed"
    [got] = client.get_buffers([a])
    assert bytes(memoryview(got)) == b"hello"
    assert memoryview(got).readonly
    [(meta, data)] = client.get_buffers([a], with_meta=True)
    assert meta == b"meta" and bytes(memoryview(data)) == b"hello"
    [m] = client.get_metadata([a])
    assert bytes(memoryview(m)) == b"meta"
    assert client.get_buffers([oid(2)], timeout_ms=0) == [None]
    assert client.get_buffers([oid(2)], timeout_ms=0, with_meta=True) == [(None, None)]
    with pytest.raises(plasma.PlasmaObjectExists, match="already exists"):
        client.create(a, 1)
    with pytest.raises(plasma.PlasmaObjectExists):
        client.create_and_seal(a, b"x")
    assert len(client.hash(a)) == 8 and client.hash(a) == client.hash(a)
    with pytest.raises(plasma.PlasmaObjectNotFound):
        client.hash(oid(2))
    with pytest.raises(plasma.PlasmaObjectNotFound):
        client.seal(oid(2))
    with pytest.raises(ValueError):
        client.create(oid(3), -1)
    with pytest.raises(TypeError):
        client.contains(20 * b"a")


def test_buffer_types(client):
    buf = client.create(oid(1), 10)
    if has_pyarrow():
        import pyarrow as pa
        assert isinstance(buf, pa.Buffer) and buf.is_mutable
        assert plasma.PlasmaBuffer is pa.Buffer
    else:
        assert isinstance(buf, memoryview) and not buf.readonly
    client.seal(oid(1))
    [got] = client.get_buffers([oid(1)])
    assert isinstance(got, plasma.PlasmaBuffer)
    with pytest.raises(TypeError):
        memoryview(got)[0] = 1


def test_get_of_own_unsealed_object(client):
    client.create(oid(1), 10, b"m")
    assert client.get_buffers([oid(1)], timeout_ms=0, with_meta=True) == [(None, None)]
    with pytest.raises(plasma.PlasmaError, match="not sealed"):
        client.get_buffers([oid(1)])
    client.seal(oid(1))
    assert client.get_buffers([oid(1)], timeout_ms=0)[0] is not None


def test_abort(client):
    buf = client.create(oid(1), 10)
    with pytest.raises(plasma.PlasmaError, match="still alive"):
        client.abort(oid(1))
    del buf
    client.abort(oid(1))
    assert oid(1) not in client.list()
    with pytest.raises(plasma.PlasmaObjectNotFound):
        client.abort(oid(1))
    client.create(oid(1), 10)  # the id is free again


def test_put_raw_buffer_and_create_and_seal(client):
    a = client.put_raw_buffer(b"raw bytes", metadata=b"RAW")
    [(meta, data)] = client.get_buffers([a], with_meta=True)
    assert (meta, bytes(memoryview(data))) == (b"RAW", b"raw bytes")
    big = np.arange(1 << 20, dtype=np.uint8)  # beyond the inline limit
    b = client.put_raw_buffer(big, object_id=oid(9))
    assert b == oid(9)
    assert np.array_equal(np.frombuffer(client.get_buffers([b])[0], np.uint8), big)
    client.create_and_seal(oid(10), bytearray(b"abc"), bytearray(b"m"))
    assert client.get_buffers([oid(10)], with_meta=True)[0][0] == b"m"
    client.create_and_seal(oid(11), big)
    assert bytes(memoryview(client.get_buffers([oid(11)])[0])) == big.tobytes()


def test_delete_evict_list_capacity(client):
    client.create_and_seal(oid(1), b"x" * 100)
    info = client.list()[oid(1)]
    assert (info["data_size"], info["metadata_size"], info["ref_count"]) == (100, 0, 0)
    assert abs(info["create_time"] - time.time()) < 60
    client.delete([oid(1), oid(2)])
    assert not client.contains(oid(1))
    client.create_and_seal(oid(3), b"y" * 1000)
    assert client.evict(1) == 1000
    assert client.store_capacity() == 100_000_000
    assert isinstance(client.debug_string(), str)
    client.set_client_options("tester", 1000)
    with pytest.raises(plasma.PlasmaStoreFull):
        client.set_client_options("tester2", 10 ** 15)


def test_notifications(store):
    c = plasma.connect(store[0])
    c.subscribe()
    with pytest.raises(plasma.PlasmaError, match="already subscribed"):
        c.subscribe()
    c.create_and_seal(oid(1), b"12345", b"67")
    assert c.get_next_notification() == (oid(1), 5, 2)
    c.evict(10)
    assert c.get_next_notification() == (oid(1), -1, -1)
    sock = c.get_notification_socket()
    c.create_and_seal(oid(2), b"1", b"")
    length = int.from_bytes(sock.recv(8), sys.byteorder)
    ids, data_sizes, metadata_sizes = c.decode_notifications(sock.recv(length))
    assert (ids, data_sizes, metadata_sizes) == ([oid(2)], [1], [0])
    sock.close()
    with pytest.raises(plasma.PlasmaError):
        plasma.connect(store[0]).get_next_notification()


def test_disconnect_keeps_held_arrays(client):
    a = client.put(np.arange(10.0))
    arr = client.get(a)
    client.disconnect()
    with pytest.raises(plasma.PlasmaConnectionError, match="disconnect"):
        client.contains(a)
    assert arr.sum() == 45.0


# --------------------------------------------------------------------------------------
# put / get of values


@pytest.mark.parametrize("dtype", TENSOR_DTYPES)
def test_put_get_every_tensor_dtype(client, dtype):
    a = (np.arange(60) % 100).astype(dtype).reshape(3, 4, 5)
    for view in [a, a.T, a[:, ::2, 1:], np.asfortranarray(a), a[::-1], a[0, 0, 0, ...], a[:0]]:
        got = client.get(client.put(view))
        assert type(got) is np.ndarray and got.dtype == view.dtype
        assert got.shape == view.shape and np.array_equal(got, view)
        assert not got.flags.writeable


@needs_pyarrow
def test_put_writes_the_tensor_message_pyarrow_writes(client):
    import pyarrow as pa

    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for view in [a, a.transpose(1, 0, 2), np.asfortranarray(a), a[:, 1:]]:
        object_id = client.put(view)
        [buf] = client.get_buffers([object_id])
        sink = pa.BufferOutputStream()
        pa.ipc.write_tensor(pa.Tensor.from_numpy(view), sink)
        assert buf.to_pybytes() == sink.getvalue().to_pybytes()
        assert client.get_buffers([object_id], with_meta=True)[0][0] == b""
        assert np.array_equal(pa.ipc.read_tensor(pa.BufferReader(buf)).to_numpy(), view)


def test_put_get_pickled_values(client):
    values = [None, "hello", 3, ["a", 1.5], {"k": (1, 2)},
              np.array([True, False]), np.arange(5, dtype=">i4"), np.array([1 + 2j]),
              np.array(["x", "yz"]), np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
              np.array([object(), 1], dtype=object)[1:]]
    for value in values:
        got = client.get(client.put(value))
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and np.array_equal(got, value)
        else:
            assert got == value
    [raw] = client.get_buffers([client.put("x")], with_meta=True)
    assert raw[0] == b"tensor_ipc.pickle5"


def test_get_of_a_dict_of_arrays_maps_them(client):
    value = {"a": np.arange(1 << 16, dtype=np.float64), "b": np.ones((100, 7), np.int16),
             "name": "batch"}
    got = client.get(client.put(value))
    assert got["name"] == "batch"
    for k in ("a", "b"):
        assert np.array_equal(got[k], value[k]) and not got[k].flags.writeable
        assert data_address(got[k]) % 64 == 0, "out-of-band buffers are 64-byte aligned"
        assert_in_store_segment(data_address(got[k]), client.store_capacity())


def test_get_single_list_and_missing(client):
    a = client.put(1)
    assert client.get(a) == 1
    assert client.get([a, a]) == [1, 1]
    assert client.get(oid(7), timeout_ms=0) is plasma.ObjectNotAvailable
    assert client.get([oid(7), a], timeout_ms=10) == [plasma.ObjectNotAvailable, 1]
    with pytest.raises(TypeError):
        client.put(1, serialization_context=object())


def test_damaged_pickles_are_errors(client):
    tag = b"tensor_ipc.pickle5"
    cases = {1: b"", 2: b"\x05" + b"\x00" * 7 + b"\x00" * 8,
             3: (10).to_bytes(8, "little") + (2 ** 40).to_bytes(8, "little"),
             4: (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
             + (8).to_bytes(8, "little") + (2 ** 63).to_bytes(8, "little")}
    for i, data in cases.items():
        client.create_and_seal(oid(i), data, tag)
        with pytest.raises(plasma.PlasmaProtocolError, match="not a valid tensor_ipc pickle"):
            client.get(oid(i))


def test_get_of_an_object_that_is_no_tensor(client):
    client.create_and_seal(oid(1), b"not a tensor message")
    with pytest.raises(ValueError, match="holds no tensor message"):
        client.get(oid(1))


def test_get_waits_for_the_seal(store):
    producer, consumer = plasma.connect(store[0]), plasma.connect(store[0])
    result = []
    t = threading.Thread(target=lambda: result.append(consumer.get(oid(1), timeout_ms=5000)))
    t.start()
    time.sleep(0.3)
    assert t.is_alive()
    producer.put(np.arange(3), object_id=oid(1))
    t.join(5)
    assert np.array_equal(result[0], np.arange(3))
    t0 = time.monotonic()
    assert consumer.get(oid(2), timeout_ms=300) is plasma.ObjectNotAvailable
    assert 0.25 < time.monotonic() - t0 < 2


# --------------------------------------------------------------------------------------
# Zero copy and lifetimes


def test_create_buffer_and_get_array_are_the_segment(store):
    capacity = 100_000_000
    writer, reader = plasma.connect(store[0]), plasma.connect(store[0])
    buf = writer.create(oid(1), 4096)
    view = np.frombuffer(buf, dtype=np.uint8)
    path = assert_in_store_segment(data_address(view), capacity)
    assert "memfd:plasma-store" in path
    view[:] = 42
    writer.seal(oid(1))
    [got] = reader.get_buffers([oid(1)])
    got = np.frombuffer(got, np.uint8)
    assert_in_store_segment(data_address(got), capacity)
    assert (got == 42).all()
    arr = reader.get(reader.put(np.arange(1000, dtype=np.float32)))
    assert_in_store_segment(data_address(arr), capacity)


def test_a_256_mib_get_takes_microseconds():
    with running_store(OUR_STORE, memory=600 << 20) as (sock, _):
        c = plasma.connect(sock)
        big = np.ones(64 << 20, dtype=np.float32)
        object_id = c.put(big)
        reader = plasma.connect(sock)
        t0 = time.perf_counter()
        big.copy()
        copy_time = time.perf_counter() - t0
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            arr = reader.get(object_id)
            times.append(time.perf_counter() - t0)
            assert arr.nbytes == 256 << 20
            del arr
        # A copy of 256 MiB takes tens of milliseconds; a mapping, microseconds.
        assert sorted(times)[10] < copy_time / 10, (copy_time, times)
        arr = reader.get(object_id)
        assert_in_store_segment(data_address(arr), 600 << 20)
        assert arr[-1] == 1.0


def test_arrays_outlive_the_client_and_the_buffers(store):
    c = plasma.connect(store[0])
    a = c.put(np.arange(100.0))
    arr = c.get(a)
    [buf] = c.get_buffers([a])
    created = c.create(oid(5), 8)
    c.seal(oid(5))
    del c, buf
    gc.collect()
    assert arr.sum() == 4950.0
    assert bytes(memoryview(created)) is not None
    other = plasma.connect(store[0])
    assert other.list()[a]["ref_count"] == 1, "the array holds the object"
    assert other.evict(10 ** 6) == 0, "nothing held can be evicted"
    del arr, created
    gc.collect()
    time.sleep(0.05)
    assert other.list()[a]["ref_count"] == 0, "released with the last view"
    assert other.evict(10 ** 6) > 0


def test_views_keep_their_object_referenced(client):
    a = client.put(np.arange(1000, dtype=np.int64))
    arr = client.get(a)
    derived = arr[10:20].reshape(2, 5)
    base = arr.base
    del arr
    gc.collect()
    assert client.list()[a]["ref_count"] == 1
    assert derived.sum() == sum(range(10, 20))
    assert repr(base).startswith("tensor_ipc.Tensor")
    del derived, base
    gc.collect()
    time.sleep(0.05)
    assert plasma.connect(client.store_socket_name).list()[a]["ref_count"] == 0
    assert client._client.held_objects() == 0


def test_create_buffer_keeps_the_sealed_object(client):
    buf = client.create(oid(1), 1000)
    client.seal(oid(1))
    assert client.evict(10 ** 6) == 0, "the create buffer still references it"
    del buf
    gc.collect()
    assert client.evict(10 ** 6) == 1000


# --------------------------------------------------------------------------------------
# Threads, signals, a dying store


def test_eight_threads_share_one_client(client):
    ids = [client.put(np.full(1000, i, dtype=np.int32)) for i in range(8)]
    errors = []

    def work(i):
        try:
            for _ in range(200):
                arr = client.get(ids[i])
                assert arr[0] == i and arr[-1] == i
                got = client.get(client.put(np.full(10, i)))
                assert (got == i).all()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)


def test_a_blocking_get_releases_the_gil(client):
    counter = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    client.get(oid(1), timeout_ms=300)
    done.set()
    t.join()
    assert counter[0] > 1000


BLOCKED_GET = """
import signal, sys, time, warnings
warnings.simplefilter("ignore")
# Ctrl-C as in a terminal, even when this test runs as a background job (started by a shell
# without job control, which makes its children ignore SIGINT; Python then keeps it ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
import tensor_ipc.plasma as plasma
c = plasma.connect(sys.argv[1])
print("ready", flush=True)
try:
    c.get(plasma.ObjectID(20 * b"z"))
except KeyboardInterrupt:
    print("interrupted", flush=True)
    c.put(1, object_id=plasma.ObjectID(20 * b"k"))
    sys.exit(3)
except plasma.PlasmaConnectionError as e:
    print("disconnected:", e, flush=True)
    sys.exit(4)
"""


def start_blocked(sock, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    p = subprocess.Popen([sys.executable, "-c", BLOCKED_GET, sock], stdout=subprocess.PIPE,
                         text=True, env=env)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    assert p.poll() is None, "the get blocks"
    return p


def test_ctrl_c_interrupts_a_blocking_get(store):
    p = start_blocked(store[0])
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 3 and "interrupted" in out
    assert time.monotonic() - t0 < 2
    assert plasma.connect(store[0]).get(oid(ord("k")), timeout_ms=1000) == 1


def test_the_store_killed_mid_get_is_an_exception(store):
    p = start_blocked(store[0])
    t0 = time.monotonic()
    store[1].kill()
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 4 and "disconnected" in out, out
    assert time.monotonic() - t0 < 2


SIGPIPE_WRITER = """
import signal, sys, time, warnings
warnings.simplefilter("ignore")
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a SIGPIPE would kill this process
import numpy as np
import tensor_ipc.plasma as plasma
c = plasma.connect(sys.argv[1])
buf = c.create(plasma.ObjectID(20 * b"w"), 100)
print("ready", flush=True)
sys.stdin.readline()  # the store is killed meanwhile
failures = 0
for call in [lambda: c.put(np.zeros(10)), lambda: c.contains(plasma.ObjectID(20 * b"a")),
             lambda: c.seal(plasma.ObjectID(20 * b"w")), lambda: c.get_buffers([], 0)]:
    try:
        call()
    except plasma.PlasmaConnectionError:
        failures += 1
del buf
print("survived", failures, flush=True)
"""


def test_a_write_after_the_store_died_raises_instead_of_sigpipe(store):
    p = subprocess.Popen([sys.executable, "-c", SIGPIPE_WRITER, store[0]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    store[1].kill()
    store[1].wait()
    out, _ = p.communicate("go\n", timeout=30)
    assert p.returncode == 0, "killed by signal %s" % -p.returncode
    assert "survived 3" in out


def test_client_death_during_get_leaves_the_store_serving(store):
    p = start_blocked(store[0])
    p.kill()
    p.wait()
    c = plasma.connect(store[0])
    c.put(1, object_id=oid(ord("z")))
    assert c.get(oid(ord("z"))) == 1


# --------------------------------------------------------------------------------------
# Without pyarrow


def test_without_pyarrow_buffers_are_memoryviews(store):
    code = textwrap.dedent("""
        import sys, warnings
        warnings.simplefilter("ignore")
        import numpy as np
        import tensor_ipc.plasma as plasma
        c = plasma.connect(sys.argv[1])
        b = c.create(plasma.ObjectID(20 * b"1"), 4)
        assert type(b) is memoryview and not b.readonly
        b[:] = b"abcd"
        c.seal(plasma.ObjectID(20 * b"1"))
        [g] = c.get_buffers([plasma.ObjectID(20 * b"1")])
        assert type(g) is memoryview and g.readonly and g.tobytes() == b"abcd"
        assert plasma.PlasmaBuffer is memoryview
        assert plasma.PlasmaError.__mro__[1] is Exception
        arr = c.get(c.put(np.arange(5)))
        assert arr.sum() == 10 and not arr.flags.writeable
        assert "pyarrow" not in sys.modules
        print("ok")
    """)
    out = run_python(code, store[0], env={"TENSOR_IPC_NO_PYARROW": "1"})
    assert out.stdout.strip() == "ok", out.stderr


# --------------------------------------------------------------------------------------
# The peers: pyarrow 11's client, Arrow 11's store, the seed


PA11_READER = """
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np, pyarrow as pa, pyarrow.plasma as plasma
c = plasma.connect(sys.argv[1])
[t] = c.get_buffers([plasma.ObjectID(20 * b"t")], timeout_ms=5000)
arr = pa.ipc.read_tensor(pa.BufferReader(t)).to_numpy()
assert arr.dtype == np.float32 and arr.shape == (3, 4), (arr.dtype, arr.shape)
assert (arr == np.arange(12, dtype=np.float32).reshape(4, 3).T).all()
[(meta, raw)] = c.get_buffers([plasma.ObjectID(20 * b"r")], with_meta=True)
assert meta == b"RAW" and raw.to_pybytes() == b"raw data"
assert c.hash(plasma.ObjectID(20 * b"r")) == bytes.fromhex(sys.argv[2])
# And the other way: pyarrow 11 writes, tensor_ipc reads.
x = np.arange(10, dtype=np.int16)
tensor = pa.Tensor.from_numpy(x)
buf = c.create(plasma.ObjectID(20 * b"p"), pa.ipc.get_tensor_size(tensor))
pa.ipc.write_tensor(tensor, pa.FixedSizeBufferWriter(buf))
c.seal(plasma.ObjectID(20 * b"p"))
c.create_and_seal(plasma.ObjectID(20 * b"q"), b"from pyarrow 11", b"M")
print("ok", flush=True)
"""


@needs_pyarrow
def test_pyarrow11_client_reads_ours_and_the_reverse(any_store, python11):
    kind, sock, _ = any_store
    c = plasma.connect(sock)
    c.put(np.arange(12, dtype=np.float32).reshape(4, 3).T, object_id=oid(ord("t")))
    r = c.put_raw_buffer(b"raw data", object_id=oid(ord("r")), metadata=b"RAW")
    out = run_python(PA11_READER, sock, c.hash(r).hex(), python=python11)
    assert out.stdout.strip() == "ok", (kind, out.stderr)
    assert np.array_equal(c.get(oid(ord("p"))), np.arange(10, dtype=np.int16))
    [(meta, data)] = c.get_buffers([oid(ord("q"))], with_meta=True)
    assert (meta, bytes(memoryview(data))) == (b"M", b"from pyarrow 11")


def test_every_call_against_the_original_store(original_store):
    c = plasma.connect(original_store[0])
    assert c.store_capacity() == 100_000_000
    a = c.put({"x": np.arange(5)})
    assert np.array_equal(c.get(a)["x"], np.arange(5))
    b = c.create(oid(1), 3, b"m")
    fill(b, b"abc")
    c.seal(oid(1))
    del b
    assert c.get_buffers([oid(1)], with_meta=True)[0][0] == b"m"
    assert c.contains(oid(1)) and c.list()[oid(1)]["state"] == "sealed"
    assert c.get(oid(2), timeout_ms=50) is plasma.ObjectNotAvailable
    c.delete([oid(1)])
    assert not c.contains(oid(1))
    assert c.evict(10 ** 6) >= 0
    c.subscribe()  # nothing sealed is left to replay: the evict freed everything
    c.create_and_seal(oid(3), b"zz")
    assert c.get_next_notification() == (oid(3), 2, 0)


def seed_reader_ported():
    """The seed's Python step 3 (examples/seed_reader.py) with only its import changed."""
    with open(os.path.join(ROOT, "examples", "seed_reader.py")) as f:
        source = f.read()
    old = "import pyarrow.plasma as plasma"
    assert source.count(old) == 1
    return source.replace(old, "import tensor_ipc.plasma as plasma")


@needs_pyarrow
def test_seed_cpp_producer_to_step_3_on_current_pyarrow(any_store, seed_cpp):
    kind, sock, _ = any_store
    produced = subprocess.run([seed_cpp, sock], capture_output=True, text=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    out = run_python(seed_reader_ported(), sock, env={"PYTHONWARNINGS": "ignore"})
    assert "all 2.0: OK" in out.stdout, (kind, out.stdout, out.stderr)


@needs_pyarrow
def test_seed_rust_producer_and_consumer(any_store, rust_bin):
    kind, sock, _ = any_store
    producer = os.path.join(rust_bin, "examples", "seed_producer")
    consumer = os.path.join(rust_bin, "examples", "seed_consumer")
    done = subprocess.run([producer, "--socket", sock, "--length", "1000"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = run_python(seed_reader_ported(), sock, env={"PYTHONWARNINGS": "ignore"})
    assert "all 2.0: OK" in out.stdout, (kind, out.stderr)
    c = plasma.connect(sock)
    arr = c.get(plasma.ObjectID(20 * b"1"))
    assert arr.shape == (1000,) and (arr == 2.0).all()
    # tensor_ipc.plasma as the producer, the Rust consumer reading.
    c.delete([plasma.ObjectID(20 * b"1")])
    del arr
    gc.collect()
    deadline = time.monotonic() + 5
    while c.contains(plasma.ObjectID(20 * b"1")) and time.monotonic() < deadline:
        time.sleep(0.01)
    c.put(np.full(1000, 2.0, dtype=np.float32), object_id=plasma.ObjectID(20 * b"1"))
    read = subprocess.run([consumer, "--socket", sock], capture_output=True, text=True,
                          timeout=60)
    assert "shape=[1000] dtype=float32 checksum=2000" in read.stdout, read.stderr


def test_start_plasma_store_context(tmp_path):
    with pytest.warns(DeprecationWarning):
        with plasma.start_plasma_store(10_000):
            pass
    with plasma.start_plasma_store(10_000) as (name, proc):
        assert os.path.exists(name)
        c = plasma.connect(name)
        assert c.store_capacity() == 10_000
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
        assert proc.returncode == 0
        assert not os.path.exists(name), "the store removes its socket"
    assert not os.path.exists(os.path.dirname(name))


def test_plasma_store_console_script(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "plasma-store")
    assert os.path.exists(script), "installed with the package"
    out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--busy-poll" in out.stdout
    sock = str(tmp_path / "s.sock")
    p = subprocess.Popen([script, "-s", sock, "-m", "1M"], stderr=subprocess.PIPE, text=True)
    try:
        c = plasma.connect(sock)
        assert c.store_capacity() == 1 << 20
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=10)
    assert p.returncode == 0 and "SIGINT received" in err
    bad = subprocess.run([script, "--memory", "lots"], capture_output=True, text=True)
    assert bad.returncode == 2 and "lots" in bad.stderr
