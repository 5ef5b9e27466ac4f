// A small C++ libplasma (Arrow 11) peer for the Rust client's tests and benchmarks.
// Built by .ci/plasma-client.sh against the pyarrow 11 wheel.
//
//   client_reader read SOCKET HEXID          prints "shape=[..] dtype=.. sum=.. digest=HEX"
//   client_reader cycles SOCKET N SIZE       N x (create, write, seal, release, get, release, delete);
//                                            prints "cycles_per_s=.."
//   client_reader put SOCKET BYTES REPS      puts a float32 tensor of BYTES bytes through
//                                            ipc::WriteTensor into a plasma buffer, REPS times;
//                                            prints "put_ms=.. (median) gbps=.."
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/tensor.h>
#include <arrow/buffer.h>
#include <plasma/client.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

static int fail(const std::string& what, const arrow::Status& s) {
  std::cerr << what << ": " << s.ToString() << std::endl;
  return 2;
}

static std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

static std::string tohex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

template <typename T>
static double sum_of(const arrow::Tensor& t) {
  double s = 0;
  const T* v = reinterpret_cast<const T*>(t.raw_data());
  for (int64_t i = 0; i < t.size(); i++) s += static_cast<double>(v[i]);
  return s;
}

static int cmd_read(const std::string& socket, const std::string& hexid) {
  plasma::PlasmaClient client;
  auto s = client.Connect(socket, "", 0);
  if (!s.ok()) return fail("connect", s);
  auto id = plasma::ObjectID::from_binary(unhex(hexid));
  std::vector<plasma::ObjectBuffer> bufs;
  s = client.Get({id}, 5000, &bufs);
  if (!s.ok()) return fail("get", s);
  if (bufs.size() != 1 || !bufs[0].data) {
    std::cerr << "object not found" << std::endl;
    return 3;
  }
  arrow::io::BufferReader reader(bufs[0].data);
  auto tensor_result = arrow::ipc::ReadTensor(&reader);
  if (!tensor_result.ok()) return fail("read tensor", tensor_result.status());
  auto tensor = *tensor_result;
  bool zero_copy = tensor->raw_data() >= bufs[0].data->data() &&
                   tensor->raw_data() < bufs[0].data->data() + bufs[0].data->size();
  double sum = 0;
  switch (tensor->type_id()) {
    case arrow::Type::FLOAT: sum = sum_of<float>(*tensor); break;
    case arrow::Type::DOUBLE: sum = sum_of<double>(*tensor); break;
    case arrow::Type::INT32: sum = sum_of<int32_t>(*tensor); break;
    case arrow::Type::INT64: sum = sum_of<int64_t>(*tensor); break;
    case arrow::Type::UINT8: sum = sum_of<uint8_t>(*tensor); break;
    default: break;
  }
  uint8_t digest[8];
  s = client.Hash(id, digest);
  if (!s.ok()) return fail("hash", s);
  std::ostringstream shape;
  for (size_t i = 0; i < tensor->shape().size(); i++) {
    shape << (i ? "," : "") << tensor->shape()[i];
  }
  std::printf("shape=[%s] dtype=%s sum=%.1f zero_copy=%d digest=%s\n", shape.str().c_str(),
              tensor->type()->ToString().c_str(), sum, zero_copy ? 1 : 0,
              tohex(digest, 8).c_str());
  return 0;
}

static plasma::ObjectID random_id(std::mt19937_64& rng) {
  std::string b(20, '\0');
  for (auto& c : b) c = static_cast<char>(rng());
  return plasma::ObjectID::from_binary(b);
}

static int cmd_cycles(const std::string& socket, long n, long size) {
  plasma::PlasmaClient client;
  auto s = client.Connect(socket, "", 0);
  if (!s.ok()) return fail("connect", s);
  std::mt19937_64 rng(std::random_device{}());
  std::vector<uint8_t> payload(size, 7);
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; i++) {
    auto id = random_id(rng);
    std::shared_ptr<arrow::Buffer> buf;
    s = client.Create(id, size, nullptr, 0, &buf);
    if (!s.ok()) return fail("create", s);
    std::memcpy(buf->mutable_data(), payload.data(), size);
    s = client.Seal(id);
    if (!s.ok()) return fail("seal", s);
    buf.reset();
    // A created buffer does not release on destruction (only Get's buffers do).
    s = client.Release(id);
    if (!s.ok()) return fail("release", s);
    std::vector<plasma::ObjectBuffer> bufs;
    s = client.Get({id}, -1, &bufs);
    if (!s.ok()) return fail("get", s);
    volatile uint8_t x = bufs[0].data->data()[0];
    (void)x;
    bufs.clear();
    s = client.Delete(id);
    if (!s.ok()) return fail("delete", s);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("cycles_per_s=%.0f\n", n / secs);
  return 0;
}

static int cmd_put(const std::string& socket, long bytes, int reps) {
  plasma::PlasmaClient client;
  auto s = client.Connect(socket, "", 0);
  if (!s.ok()) return fail("connect", s);
  long n = bytes / 4;
  auto data = arrow::AllocateBuffer(n * 4).ValueOrDie();
  float* v = reinterpret_cast<float*>(data->mutable_data());
  for (long i = 0; i < n; i++) v[i] = 2.0f;
  std::shared_ptr<arrow::Buffer> shared(std::move(data));
  arrow::Tensor tensor(arrow::float32(), shared, {n});
  int64_t size = 0;
  s = arrow::ipc::GetTensorSize(tensor, &size);
  if (!s.ok()) return fail("size", s);
  std::mt19937_64 rng(std::random_device{}());
  std::vector<double> times;
  for (int r = 0; r < reps; r++) {
    auto id = random_id(rng);
    auto start = std::chrono::steady_clock::now();
    {
      std::shared_ptr<arrow::Buffer> buf;
      s = client.Create(id, size, nullptr, 0, &buf);
      if (!s.ok()) return fail("create", s);
      arrow::io::FixedSizeBufferWriter stream(buf);
      int32_t meta_len = 0;
      int64_t body_len = 0;
      s = arrow::ipc::WriteTensor(tensor, &stream, &meta_len, &body_len);
      if (!s.ok()) return fail("write", s);
      s = client.Seal(id);
      if (!s.ok()) return fail("seal", s);
      times.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    // A created buffer does not release on destruction (only Get's buffers do).
    s = client.Release(id);
    if (!s.ok()) return fail("release", s);
    s = client.Delete(id);
    if (!s.ok()) return fail("delete", s);
  }
  double first = times.front();
  std::sort(times.begin(), times.end());
  double med = times[times.size() / 2];
  std::printf("put_ms=%.2f gbps=%.3f first_ms=%.2f\n", med * 1e3, size / med / 1e9, first * 1e3);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 4 && std::string(argv[1]) == "read") return cmd_read(argv[2], argv[3]);
  if (argc >= 5 && std::string(argv[1]) == "cycles")
    return cmd_cycles(argv[2], std::atol(argv[3]), std::atol(argv[4]));
  if (argc >= 5 && std::string(argv[1]) == "put")
    return cmd_put(argv[2], std::atol(argv[3]), std::atoi(argv[4]));
  std::cerr << "usage: client_reader read SOCKET HEXID | cycles SOCKET N SIZE | put SOCKET BYTES REPS"
            << std::endl;
  return 1;
}
