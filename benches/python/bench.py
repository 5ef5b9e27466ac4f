"""The Python package beside its peers, in one run (issue 9): tensor_ipc.plasma,
pyarrow 11's pyarrow.plasma (on Arrow 11's store and on ours) and Ray.

    python bench.py all --rounds 15        # what benches/python/run.sh runs

The `all` command (run with the current-pyarrow Python that has tensor_ipc and ray)
starts the stores, runs the other drivers as subprocesses (`pa11` under the pyarrow 11
Python, `reader` for second-process gets), and prints the figures and their ratios as
Markdown. Each figure is the median over rounds of each round's median (or rate).
Environment: PLASMA_STORE_OURS, PLASMA_STORE_ORIGINAL, PLASMA_PYTHON11.
"""

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.simplefilter("ignore")

KIB = 1 << 10
MIB = 1 << 20
SIZES = [KIB, 64 * KIB, MIB, 16 * MIB, 256 * MIB]
SMALL_CYCLES = 2000
STORE_MEMORY = 1 << 30


def median(values):
    return statistics.median(values)


def timed_gets(get, n):
    """The median time of ``n`` calls of ``get()`` (the result dropped outside the timing)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        x = get()
        times.append(time.perf_counter() - t0)
        del x
    return median(times)


def gets_per_size(size):
    return 200 if size <= 16 * MIB else 50


# ----------------------------------------------------------------------------------------
# Drivers (each prints one JSON object)


def driver_ours(args):
    import tensor_ipc.plasma as plasma

    c = plasma.connect(args.socket)
    out = {"cycles": [], "get": {str(s): [] for s in SIZES}, "put_warm": []}
    small = np.arange(256, dtype=np.float32)  # 1 KiB
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(SMALL_CYCLES):
            x = c.get(c.put(small))
            del x
        out["cycles"].append(SMALL_CYCLES / (time.perf_counter() - t0))
    ids = {s: c.put(np.ones(s // 4, dtype=np.float32)) for s in SIZES}
    for _ in range(args.rounds):
        for s in SIZES:
            out["get"][str(s)].append(timed_gets(lambda: c.get(ids[s]), gets_per_size(s)))
    # (Kept: the second-process reader gets them next.)
    out["ids"] = {str(s): ids[s].binary().hex() for s in SIZES}
    big = np.ones(256 * MIB // 4, dtype=np.float32)
    for _ in range(args.rounds):
        oid = plasma.ObjectID.from_random()
        t0 = time.perf_counter()
        c.put(big, object_id=oid)
        out["put_warm"].append(time.perf_counter() - t0)
        c.delete([oid])
    print(json.dumps(out))


def driver_ours_first_put(args):
    import tensor_ipc.plasma as plasma

    c = plasma.connect(args.socket)
    big = np.ones(256 * MIB // 4, dtype=np.float32)
    t0 = time.perf_counter()
    c.put(big)
    print(json.dumps({"put_first": time.perf_counter() - t0}))


def driver_reader(args):
    """Second-process gets of the objects named in args.ids (hex), ours or pyarrow 11's."""
    if args.client == "ours":
        import tensor_ipc.plasma as plasma
    else:
        import pyarrow.plasma as plasma
    c = plasma.connect(args.socket)
    ids = {s: plasma.ObjectID(bytes.fromhex(h)) for s, h in json.loads(args.ids).items()}
    out = {s: [] for s in ids}
    for _ in range(args.rounds):
        for s, oid in ids.items():
            out[s].append(timed_gets(lambda: c.get(oid), gets_per_size(int(s))))
    print(json.dumps(out))


def driver_pa11(args):
    import pyarrow.plasma as plasma

    c = plasma.connect(args.socket)
    out = {"cycles": [], "get": {str(s): [] for s in SIZES}, "put_warm": [], "get_seed": []}
    small = np.arange(256, dtype=np.float32)
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(SMALL_CYCLES):
            x = c.get(c.put(small))
            del x
        out["cycles"].append(SMALL_CYCLES / (time.perf_counter() - t0))
    ids = {s: c.put(np.ones(s // 4, dtype=np.float32)) for s in SIZES}
    for _ in range(args.rounds):
        for s in SIZES:
            out["get"][str(s)].append(timed_gets(lambda: c.get(ids[s]), gets_per_size(s)))
    out["ids"] = {str(s): ids[s].binary().hex() for s in SIZES}
    big = np.ones(256 * MIB // 4, dtype=np.float32)
    import pyarrow as pa

    tensor = pa.Tensor.from_numpy(big)
    size = pa.ipc.get_tensor_size(tensor)
    for _ in range(args.rounds):
        # The seed's way: create, pa.ipc.write_tensor into the buffer, seal (Arrow 11 digest).
        oid = plasma.ObjectID.from_random()
        t0 = time.perf_counter()
        buf = c.create(oid, size)
        pa.ipc.write_tensor(tensor, pa.FixedSizeBufferWriter(buf))
        c.seal(oid)
        out["put_warm"].append(time.perf_counter() - t0)
        del buf
        c.delete([oid])
    print(json.dumps(out))


def driver_ray(args):
    import ray

    out = {"cycles": [], "get": {str(s): [] for s in SIZES}, "get_second": {str(s): [] for s in SIZES},
           "put_warm": [], "put_first": []}
    big = np.ones(256 * MIB // 4, dtype=np.float32)
    small = np.arange(256, dtype=np.float32)

    def init():
        ray.init(num_cpus=2, object_store_memory=STORE_MEMORY, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)

    for _ in range(args.first_rounds):
        init()
        t0 = time.perf_counter()
        ref = ray.put(big)
        out["put_first"].append(time.perf_counter() - t0)
        del ref
        ray.shutdown()
    init()

    @ray.remote
    class Reader:
        def gets(self, boxed, n):
            ref = boxed[0]
            return timed_gets(lambda: ray.get(ref), n)

    reader = Reader.remote()
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(SMALL_CYCLES // 4):
            x = ray.get(ray.put(small))
            del x
        out["cycles"].append(SMALL_CYCLES // 4 / (time.perf_counter() - t0))
    refs = {s: ray.put(np.ones(s // 4, dtype=np.float32)) for s in SIZES}
    for _ in range(args.rounds):
        for s in SIZES:
            out["get"][str(s)].append(timed_gets(lambda: ray.get(refs[s]), gets_per_size(s)))
            out["get_second"][str(s)].append(
                ray.get(reader.gets.remote([refs[s]], gets_per_size(s) // 4)))
    del refs
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ref = ray.put(big)
        out["put_warm"].append(time.perf_counter() - t0)
        del ref
    ray.shutdown()
    print(json.dumps(out))


def driver_write_tensor(args):
    import pyarrow as pa

    import tensor_ipc as ti

    n = 256 * MIB // 4 // (64 * 16)
    a = np.arange(256 * MIB // 4, dtype=np.float32)
    view = a.reshape(64, n, 16).transpose(1, 0, 2)
    size = ti.tensor_size(view)
    ours_dest = np.zeros(size, np.uint8)
    pa_dest = pa.allocate_buffer(size)
    np.frombuffer(pa_dest, np.uint8)[:] = 0  # touched, as ours
    copy_dest = np.zeros_like(a)
    out = {"ours": [], "pyarrow": [], "memcpy": []}
    tensor = pa.Tensor.from_numpy(view)
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ti.write_tensor(view, ours_dest)
        out["ours"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pa.ipc.write_tensor(pa.Tensor.from_numpy(view), pa.FixedSizeBufferWriter(pa_dest))
        out["pyarrow"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.copyto(copy_dest, a)
        out["memcpy"].append(time.perf_counter() - t0)
    assert bytes(memoryview(ours_dest)[:4096]) == pa_dest.to_pybytes()[:4096]
    del tensor
    print(json.dumps(out))


# ----------------------------------------------------------------------------------------
# The orchestrator


@contextlib.contextmanager
def store(exe, memory=STORE_MEMORY):
    tmp = tempfile.mkdtemp(prefix="bench-plasma-")
    sock = os.path.join(tmp, "plasma.sock")
    proc = subprocess.Popen([exe, "-s", sock, "-m", str(memory)], stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(sock):
            assert proc.poll() is None, "%s exited" % exe
            time.sleep(0.01)
        time.sleep(2)  # let a prefault finish
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


def run(python, *args):
    out = subprocess.run([python, os.path.abspath(__file__)] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit("driver %s failed:\n%s" % (args[0], out.stderr[-3000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def second_process(python, client, sock, ids, rounds):
    return run(python, "reader", "--client", client, "--socket", sock, "--ids", json.dumps(ids),
               "--rounds", rounds)


def med(values):
    return median(values)


def fmt_us(seconds):
    return "%.1f us" % (seconds * 1e6)


def fmt_ms(seconds):
    return "%.1f ms" % (seconds * 1e3)


def orchestrate(args):
    ours_exe = os.environ["PLASMA_STORE_OURS"]
    original_exe = os.environ["PLASMA_STORE_ORIGINAL"]
    py11 = os.environ["PLASMA_PYTHON11"]
    py = sys.executable
    r = args.rounds
    res = {}
    with store(ours_exe) as sock:
        res["ours"] = run(py, "ours", "--socket", sock, "--rounds", r)
        res["ours_second"] = second_process(py, "ours", sock, res["ours"]["ids"], r)
    with store(original_exe) as sock:
        res["ours_on_original"] = run(py, "ours", "--socket", sock, "--rounds", r)
    with store(original_exe) as sock:
        res["pa11"] = run(py11, "pa11", "--socket", sock, "--rounds", r)
        res["pa11_second"] = second_process(py11, "pa11", sock, res["pa11"]["ids"], r)
    with store(ours_exe) as sock:
        res["pa11_on_ours"] = run(py11, "pa11", "--socket", sock, "--rounds", r)
    firsts = []
    for _ in range(args.first_rounds):
        with store(ours_exe) as sock:
            firsts.append(run(py, "ours-first-put", "--socket", sock)["put_first"])
    res["ours_first"] = firsts
    res["ray"] = run(py, "ray", "--rounds", r, "--first-rounds", args.first_rounds)
    res["write_tensor"] = run(py, "write-tensor", "--rounds", r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    report(res, args)


def report(res, args):
    ours, pa11, ray = res["ours"], res["pa11"], res["ray"]
    rows = []

    def row(what, value, target="", verdict=""):
        rows.append("| %s | %s | %s | %s |" % (what, value, target, verdict))

    def check(ok):
        return "met" if ok else "**MISSED**"

    c_ours, c_pa11, c_ray = med(ours["cycles"]), med(pa11["cycles"]), med(ray["cycles"])
    row("1 KiB put+get+release cycles/s, tensor_ipc.plasma, our store", "%.0f" % c_ours)
    row("... tensor_ipc.plasma, Arrow 11's store", "%.0f" % med(res["ours_on_original"]["cycles"]))
    row("... pyarrow 11's client, Arrow 11's store", "%.0f" % c_pa11)
    row("... pyarrow 11's client, our store", "%.0f" % med(res["pa11_on_ours"]["cycles"]))
    row("... Ray 2.60 (ray.put / ray.get)", "%.0f" % c_ray)
    row("ours / pyarrow 11 on its store", "%.2fx" % (c_ours / c_pa11), ">= 2x", check(c_ours / c_pa11 >= 2))
    row("ours / Ray", "%.1fx" % (c_ours / c_ray), ">= 10x", check(c_ours / c_ray >= 10))
    for s in SIZES:
        name = "%d KiB" % (s // KIB) if s < MIB else "%d MiB" % (s // MIB)
        g1, g2 = med(ours["get"][str(s)]), med(res["ours_second"][str(s)])
        p1, p2 = med(pa11["get"][str(s)]), med(res["pa11_second"][str(s)])
        y1, y2 = med(ray["get"][str(s)]), med(ray["get_second"][str(s)])
        ok = max(g1, g2) <= 15e-6 and g1 <= p1 / 2 and g2 <= p2 / 2
        row("get %s into numpy: ours same / second process" % name,
            "%s / %s" % (fmt_us(g1), fmt_us(g2)), "<= 15 us, <= pyarrow 11 / 2", check(ok))
        row("... pyarrow 11 (its store) / Ray, same and second process",
            "%s, %s / %s, %s" % (fmt_us(p1), fmt_us(p2), fmt_us(y1), fmt_us(y2)))
    w_ours, w_pa11, w_ray = med(ours["put_warm"]), med(pa11["put_warm"]), med(ray["put_warm"])
    f_ours, f_ray = med(res["ours_first"]), med(ray["put_first"])
    row("256 MiB float32 put, warm: ours / Ray", "%s / %s" % (fmt_ms(w_ours), fmt_ms(w_ray)),
        "ours <= Ray", check(w_ours <= w_ray))
    row("256 MiB float32 put, first: ours / Ray", "%s / %s" % (fmt_ms(f_ours), fmt_ms(f_ray)),
        "ours <= Ray", check(f_ours <= f_ray))
    row("... pyarrow 11 (create + pa.ipc.write_tensor + seal), warm", fmt_ms(w_pa11))
    wt = res["write_tensor"]
    t_ours, t_pa, t_copy = med(wt["ours"]), med(wt["pyarrow"]), med(wt["memcpy"])
    row("write_tensor of the transposed 256 MiB view: ours / pa.ipc.write_tensor",
        "%s / %s (%.1fx)" % (fmt_ms(t_ours), fmt_ms(t_pa), t_pa / t_ours), ">= 4x",
        check(t_pa / t_ours >= 4))
    row("... np.copyto of 256 MiB (memcpy)", fmt_ms(t_copy))
    print("| measurement | value | target | |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("rounds: %d (first puts: %d); per-round small cycles/s ours %s, pyarrow 11 %s, Ray %s"
          % (args.rounds, args.first_rounds, [round(x) for x in ours["cycles"]],
             [round(x) for x in pa11["cycles"]], [round(x) for x in ray["cycles"]]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["all", "ours", "ours-first-put", "reader", "pa11", "ray",
                                       "write-tensor", "report"])
    p.add_argument("--socket")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--first-rounds", type=int, default=5)
    p.add_argument("--client", default="ours")
    p.add_argument("--ids")
    p.add_argument("--json")
    args = p.parse_args()
    if args.command == "report":
        with open(args.json) as f:
            report(json.load(f), args)
        return
    {"all": orchestrate, "ours": driver_ours, "ours-first-put": driver_ours_first_put,
     "reader": driver_reader, "pa11": driver_pa11, "ray": driver_ray,
     "write-tensor": driver_write_tensor}[args.command](args)


if __name__ == "__main__":
    main()
