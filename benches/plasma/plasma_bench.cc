// Plasma store benchmark client, built against the pyarrow 11 wheel's
// libplasma (the Arrow 11 C++ client), so the original plasma-store-server
// and tensor-ipc's plasma-store are driven by the same code.
//
//   plasma_bench SOCKET small CYCLES PROCS
//     1 KiB objects: Create + write + Seal + Release + Get + (buffer drop:
//     Release) + Delete per cycle, in PROCS forked client processes, each
//     doing CYCLES cycles. Prints total cycles/s.
//   plasma_bench SOCKET big REPS MIB
//     MIB MiB put (Create + memcpy + Seal, which hashes the data) then Get +
//     read (a 64-bit sum over all the data), REPS times, fresh id each time,
//     deleted after. Prints per-rep put/get ms.

#include <plasma/client.h>
#include <arrow/buffer.h>
#include <arrow/util/logging.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using plasma::ObjectID;
using plasma::PlasmaClient;
using Clock = std::chrono::steady_clock;

static ObjectID make_id(uint32_t proc, uint64_t n) {
  char raw[20];
  std::memset(raw, 0x5a, sizeof raw);
  uint32_t pid = static_cast<uint32_t>(getpid());
  std::memcpy(raw, &proc, sizeof proc);
  std::memcpy(raw + 4, &n, sizeof n);
  std::memcpy(raw + 12, &pid, sizeof pid);
  return ObjectID::from_binary(std::string(raw, 20));
}

static void small_worker(const std::string& sock, uint32_t proc, int64_t cycles) {
  PlasmaClient client;
  ARROW_CHECK_OK(client.Connect(sock, "", 0));
  std::vector<uint8_t> payload(1024, 0xab);
  for (int64_t i = 0; i < cycles; ++i) {
    ObjectID id = make_id(proc, static_cast<uint64_t>(i));
    {
      std::shared_ptr<arrow::Buffer> buffer;
      ARROW_CHECK_OK(client.Create(id, 1024, nullptr, 0, &buffer));
      std::memcpy(buffer->mutable_data(), payload.data(), payload.size());
      ARROW_CHECK_OK(client.Seal(id));
      ARROW_CHECK_OK(client.Release(id));
    }
    {
      std::vector<plasma::ObjectBuffer> out;
      ARROW_CHECK_OK(client.Get({id}, -1, &out));
      if (out[0].data->size() != 1024 || out[0].data->data()[0] != 0xab) {
        std::fprintf(stderr, "bad object\n");
        std::exit(2);
      }
    }
    ARROW_CHECK_OK(client.Delete(id));
  }
  ARROW_CHECK_OK(client.Disconnect());
}

static int run_small(const std::string& sock, int64_t cycles, int procs) {
  auto t0 = Clock::now();
  std::vector<pid_t> kids;
  for (int p = 0; p < procs; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      small_worker(sock, static_cast<uint32_t>(p), cycles);
      std::_Exit(0);
    }
    kids.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (failed) {
    std::fprintf(stderr, "%d workers failed\n", failed);
    return 1;
  }
  std::printf("small procs=%d cycles=%lld seconds=%.3f cycles_per_s=%.0f\n", procs,
              static_cast<long long>(cycles * procs), secs, cycles * procs / secs);
  return 0;
}

static int run_big(const std::string& sock, int reps, int64_t mib) {
  PlasmaClient client;
  ARROW_CHECK_OK(client.Connect(sock, "", 0));
  const int64_t size = mib << 20;
  std::vector<uint8_t> src(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) src[i] = static_cast<uint8_t>(i * 31 + 7);
  for (int r = 0; r < reps; ++r) {
    ObjectID id = make_id(0xb16, static_cast<uint64_t>(r));
    auto t0 = Clock::now();
    {
      std::shared_ptr<arrow::Buffer> buffer;
      ARROW_CHECK_OK(client.Create(id, size, nullptr, 0, &buffer));
      std::memcpy(buffer->mutable_data(), src.data(), static_cast<size_t>(size));
      ARROW_CHECK_OK(client.Seal(id));
      ARROW_CHECK_OK(client.Release(id));
    }
    auto t1 = Clock::now();
    uint64_t sum = 0;
    {
      std::vector<plasma::ObjectBuffer> out;
      ARROW_CHECK_OK(client.Get({id}, -1, &out));
      const uint64_t* words = reinterpret_cast<const uint64_t*>(out[0].data->data());
      for (int64_t i = 0; i < size / 8; ++i) sum += words[i];
    }
    auto t2 = Clock::now();
    ARROW_CHECK_OK(client.Delete(id));
    std::printf("big rep=%d mib=%lld put_ms=%.2f get_read_ms=%.2f checksum=%llu\n", r,
                static_cast<long long>(mib),
                std::chrono::duration<double, std::milli>(t1 - t0).count(),
                std::chrono::duration<double, std::milli>(t2 - t1).count(),
                static_cast<unsigned long long>(sum));
  }
  ARROW_CHECK_OK(client.Disconnect());
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s SOCKET small CYCLES PROCS | SOCKET big REPS MIB\n", argv[0]);
    return 2;
  }
  std::string sock = argv[1], mode = argv[2];
  if (mode == "small") return run_small(sock, std::atoll(argv[3]), std::atoi(argv[4]));
  if (mode == "big") return run_big(sock, std::atoi(argv[3]), std::atoll(argv[4]));
  return 2;
}
