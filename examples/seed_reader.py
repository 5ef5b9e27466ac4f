"""The seed's Python step 3: read the tensor the C++ producer stored.

Usage: python seed_reader.py [SOCKET]   (pyarrow 11, default /tmp/plasma)
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.plasma as plasma

socket = sys.argv[1] if len(sys.argv) > 1 else '/tmp/plasma'
plasma_client = plasma.connect(socket)

# inputs: a list of object ids
inputs = [20 * b'1']

# Construct Object ID and perform a batch get
object_ids = [plasma.ObjectID(inp) for inp in inputs]
buffers = plasma_client.get_buffers(object_ids)

# Read the tensor and convert to numpy array for each object
arrs = []
for buffer in buffers:
    reader = pa.BufferReader(buffer)
    t = pa.ipc.read_tensor(reader)
    arr = t.to_numpy()
    arrs.append(arr)

# arrs is now a list of numpy arrays
assert np.all(arrs[0] == 2.0 * np.ones(1000, dtype="float32"))
assert arrs[0].shape == (1000,) and arrs[0].dtype == np.float32
print("read back", arrs[0].shape, arrs[0].dtype, "all 2.0: OK")
