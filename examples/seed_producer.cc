// The seed's C++ producer (steps 0-2 of "Use Plasma to Access Tensors from
// C++ in Python"): serialize 1000 floats of 2.0 as an Arrow tensor and store
// it in a Plasma store under the object id of twenty '1' bytes.
//
// Build against the headers and libraries of the pyarrow 11 wheel, e.g.
//   g++ -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=0 -I$PA/include seed_producer.cc \
//       -L$PA -l:libplasma.so.1100 -l:libarrow.so.1100 -Wl,-rpath,$PA
// (see .ci/seed-cpp.sh). Usage: seed_producer [SOCKET], default /tmp/plasma.

#include <plasma/client.h>
#include <arrow/tensor.h>
#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/logging.h>

#include <iostream>
#include <vector>

using namespace arrow;
using plasma::ObjectID;
using plasma::PlasmaClient;

int main(int argc, char** argv) {
  const std::string socket = argc > 1 ? argv[1] : "/tmp/plasma";

  // Step 0: connect.
  PlasmaClient client_;
  ARROW_CHECK_OK(client_.Connect(socket, "", 0));

  // Step 1: a float array wrapped (no copy) into a tensor.
  ObjectID object_id = ObjectID::from_binary("11111111111111111111");
  int64_t input_length = 1000;
  std::vector<float> input(input_length);
  for (int64_t i = 0; i < input_length; ++i) {
    input[i] = 2.0;
  }
  auto value_buffer = Buffer::Wrap<float>(input);
  Tensor t(float32(), value_buffer, {input_length});

  // Step 2: create the object, write the tensor into it, seal.
  int64_t datasize;
  ARROW_CHECK_OK(ipc::GetTensorSize(t, &datasize));
  const int64_t object_size = datasize;
  int32_t meta_len = 0;
  std::shared_ptr<Buffer> buffer;
  ARROW_CHECK_OK(client_.Create(object_id, datasize, NULL, 0, &buffer));
  io::FixedSizeBufferWriter stream(buffer);
  // WriteTensor reports the body length in its last argument.
  ARROW_CHECK_OK(arrow::ipc::WriteTensor(t, &stream, &meta_len, &datasize));
  ARROW_CHECK_OK(client_.Seal(object_id));

  std::cout << "stored tensor: " << datasize << " body bytes, " << object_size
            << " object bytes, as " << object_id.hex() << std::endl;
  ARROW_CHECK_OK(client_.Disconnect());
  return 0;
}
