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
//   plasma_bench SOCKET many CLIENTS SECONDS
//     CLIENTS connections (100 threads per forked process, each with its own
//     PlasmaClient), all connected before any starts, each doing the small
//     cycle above for SECONDS. Prints total cycles/s and the latency of one
//     cycle over all clients (median, p99, max).

#include <plasma/client.h>
#include <arrow/buffer.h>
#include <arrow/util/logging.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
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

// One small cycle (the same as small_worker's loop body).
static void small_cycle(PlasmaClient& client, const ObjectID& id, const std::vector<uint8_t>& payload) {
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

static void write_all(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n <= 0) std::exit(3);
    p += n;
    len -= static_cast<size_t>(n);
  }
}

static bool read_all(int fd, void* data, size_t len) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// A forked process of `threads` clients: connects them all, says so on `ready`, waits for
// the go byte on `go`, runs cycles for `seconds`, then writes its cycle latencies (count,
// then microseconds as doubles) to `results`.
static void many_process(const std::string& sock, uint32_t proc, int threads, double seconds,
                         int ready, int go, int results) {
  std::vector<std::unique_ptr<PlasmaClient>> clients(threads);
  for (auto& c : clients) {
    c.reset(new PlasmaClient());
    ARROW_CHECK_OK(c->Connect(sock, "", 0, 200));
  }
  char byte = 'r';
  write_all(ready, &byte, 1);
  if (!read_all(go, &byte, 1)) std::exit(4);
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(seconds));
  std::vector<std::vector<double>> latencies(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<uint8_t> payload(1024, 0xab);
      auto& mine = latencies[t];
      for (uint64_t i = 0;; ++i) {
        auto t0 = Clock::now();
        if (t0 >= deadline) break;
        small_cycle(*clients[t], make_id(proc * 1000 + static_cast<uint32_t>(t), i), payload);
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& c : clients) ARROW_CHECK_OK(c->Disconnect());
  for (auto& l : latencies) {
    uint64_t count = l.size();
    write_all(results, &count, sizeof count);
    write_all(results, l.data(), l.size() * sizeof(double));
  }
}

static int run_many(const std::string& sock, int clients, double seconds) {
  const int per_process = 100;
  int procs = (clients + per_process - 1) / per_process;
  int ready[2], go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) return 1;
  std::vector<pid_t> kids;
  std::vector<int> results;
  for (int p = 0; p < procs; ++p) {
    int threads = std::min(per_process, clients - p * per_process);
    int out[2];
    if (pipe(out) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(out[0]);
      many_process(sock, static_cast<uint32_t>(p), threads, seconds, ready[1], go[0], out[1]);
      std::_Exit(0);
    }
    close(out[1]);
    kids.push_back(pid);
    results.push_back(out[0]);
  }
  for (int p = 0; p < procs; ++p) {
    char byte;
    if (!read_all(ready[0], &byte, 1)) {
      std::fprintf(stderr, "a client process failed to connect\n");
      return 1;
    }
  }
  auto t0 = Clock::now();
  std::vector<char> bytes(static_cast<size_t>(procs), 'g');
  write_all(go[1], bytes.data(), bytes.size());
  std::vector<double> all;
  std::vector<uint64_t> per_client;
  for (int p = 0; p < procs; ++p) {
    int threads = std::min(per_process, clients - p * per_process);
    for (int t = 0; t < threads; ++t) {
      uint64_t count = 0;
      if (!read_all(results[p], &count, sizeof count)) {
        std::fprintf(stderr, "a client process failed\n");
        return 1;
      }
      per_client.push_back(count);
      size_t at = all.size();
      all.resize(at + count);
      if (!read_all(results[p], all.data() + at, count * sizeof(double))) return 1;
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  int failed = 0;
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  if (failed || all.empty()) {
    std::fprintf(stderr, "%d client processes failed\n", failed);
    return 1;
  }
  std::sort(all.begin(), all.end());
  std::sort(per_client.begin(), per_client.end());
  auto pct = [&](double q) { return all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))] / 1000.0; };
  std::printf("many clients=%d cycles=%zu seconds=%.3f cycles_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
              "client_cycles_min=%llu client_cycles_median=%llu client_cycles_max=%llu\n",
              clients, all.size(), secs, all.size() / secs, pct(0.5), pct(0.99), all.back() / 1000.0,
              static_cast<unsigned long long>(per_client.front()),
              static_cast<unsigned long long>(per_client[per_client.size() / 2]),
              static_cast<unsigned long long>(per_client.back()));
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
    std::fprintf(stderr, "usage: %s SOCKET small CYCLES PROCS | SOCKET big REPS MIB | SOCKET many CLIENTS SECONDS\n", argv[0]);
    return 2;
  }
  std::string sock = argv[1], mode = argv[2];
  if (mode == "small") return run_small(sock, std::atoll(argv[3]), std::atoi(argv[4]));
  if (mode == "big") return run_big(sock, std::atoi(argv[3]), std::atoll(argv[4]));
  if (mode == "many") return run_many(sock, std::atoi(argv[3]), std::atof(argv[4]));
  return 2;
}
