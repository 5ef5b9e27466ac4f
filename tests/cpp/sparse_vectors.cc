// Arrow C++ side of the sparse tensor interop tests and benchmark (see tests/sparse.rs and
// benches/sparse_compare.sh). Built by .ci/sparse-cpp.sh against the libarrow of the current
// pyarrow wheel.
//
//   sparse_vectors write DIR SEED
//       Writes sparse tensors converted by Arrow C++ (SparseCOOTensor::Make, SparseCSRMatrix::Make,
//       SparseCSCMatrix::Make, SparseCSFTensor::Make) from seeded random dense tensors, in every
//       format and index type int8..int64, with WriteSparseTensor, plus DIR/vectors.json listing
//       each file with its format, value type, index type, shape and dense values (row-major).
//   sparse_vectors read FILE...
//       Reads each file with ReadSparseTensor, densifies it with ToTensor and prints one JSON line
//       per file: {"ok":true,"dense":[...]} or {"ok":false,"error":"..."}.
//   sparse_vectors bench ROWS COLS DENSITY REPS SEED
//       Times SparseCOOTensor::Make and SparseCSRMatrix::Make of a float32 ROWS x COLS matrix
//       with the given fraction of non-zeros; prints JSON with the median nanoseconds.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/sparse_tensor.h>
#include <arrow/tensor.h>

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "sparse_vectors: " << what << std::endl;
  std::exit(1);
}

template <typename T>
T Check(arrow::Result<T> result, const std::string& what) {
  if (!result.ok()) Die(what + ": " + result.status().ToString());
  return std::move(result).ValueOrDie();
}

void Check(const arrow::Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.ToString());
}

std::string Join(const std::vector<int64_t>& v) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  out << "]";
  return out.str();
}

std::string JsonNumbers(const std::vector<double>& v) {
  std::ostringstream out;
  out.precision(17);
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  out << "]";
  return out.str();
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The row-major elements of a row-major tensor of a supported type, as doubles.
std::vector<double> ToDoubles(const arrow::Tensor& t) {
  std::vector<double> out(t.size());
  const uint8_t* data = t.raw_data();
  auto fill = [&](auto tag) {
    using C = decltype(tag);
    for (int64_t i = 0; i < t.size(); ++i) {
      C v;
      std::memcpy(&v, data + i * sizeof(C), sizeof(C));
      out[i] = static_cast<double>(v);
    }
  };
  switch (t.type_id()) {
    case arrow::Type::INT8: fill(int8_t{}); break;
    case arrow::Type::INT16: fill(int16_t{}); break;
    case arrow::Type::INT32: fill(int32_t{}); break;
    case arrow::Type::INT64: fill(int64_t{}); break;
    case arrow::Type::UINT8: fill(uint8_t{}); break;
    case arrow::Type::UINT16: fill(uint16_t{}); break;
    case arrow::Type::UINT32: fill(uint32_t{}); break;
    case arrow::Type::UINT64: fill(uint64_t{}); break;
    case arrow::Type::FLOAT: fill(float{}); break;
    case arrow::Type::DOUBLE: fill(double{}); break;
    default: Die("unsupported value type " + t.type()->ToString());
  }
  return out;
}

// A row-major dense tensor of `type` holding `values`.
std::shared_ptr<arrow::Tensor> MakeDense(const std::shared_ptr<arrow::DataType>& type,
                                         const std::vector<int64_t>& shape,
                                         const std::vector<double>& values) {
  const int width = type->byte_width();
  auto buffer = Check(arrow::AllocateBuffer(static_cast<int64_t>(values.size()) * width),
                      "allocate");
  uint8_t* data = buffer->mutable_data();
  auto fill = [&](auto tag) {
    using C = decltype(tag);
    for (size_t i = 0; i < values.size(); ++i) {
      C v = static_cast<C>(values[i]);
      std::memcpy(data + i * sizeof(C), &v, sizeof(C));
    }
  };
  switch (type->id()) {
    case arrow::Type::INT8: fill(int8_t{}); break;
    case arrow::Type::INT16: fill(int16_t{}); break;
    case arrow::Type::INT32: fill(int32_t{}); break;
    case arrow::Type::INT64: fill(int64_t{}); break;
    case arrow::Type::UINT8: fill(uint8_t{}); break;
    case arrow::Type::UINT16: fill(uint16_t{}); break;
    case arrow::Type::UINT32: fill(uint32_t{}); break;
    case arrow::Type::FLOAT: fill(float{}); break;
    case arrow::Type::DOUBLE: fill(double{}); break;
    default: Die("unsupported value type " + type->ToString());
  }
  return Check(arrow::Tensor::Make(type, std::shared_ptr<arrow::Buffer>(std::move(buffer)),
                                   shape),
               "Tensor::Make");
}

std::shared_ptr<arrow::SparseTensor> Convert(const std::string& format,
                                             const arrow::Tensor& dense,
                                             const std::shared_ptr<arrow::DataType>& index) {
  if (format == "coo") return Check(arrow::SparseCOOTensor::Make(dense, index), "COO");
  if (format == "csr") return Check(arrow::SparseCSRMatrix::Make(dense, index), "CSR");
  if (format == "csc") return Check(arrow::SparseCSCMatrix::Make(dense, index), "CSC");
  return Check(arrow::SparseCSFTensor::Make(dense, index), "CSF");
}

std::string Name(const std::shared_ptr<arrow::DataType>& t) {
  switch (t->id()) {
    case arrow::Type::INT8: return "int8";
    case arrow::Type::INT16: return "int16";
    case arrow::Type::INT32: return "int32";
    case arrow::Type::INT64: return "int64";
    case arrow::Type::UINT8: return "uint8";
    case arrow::Type::UINT16: return "uint16";
    case arrow::Type::UINT32: return "uint32";
    case arrow::Type::FLOAT: return "float32";
    case arrow::Type::DOUBLE: return "float64";
    default: return t->ToString();
  }
}

int Write(const std::string& dir, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<std::vector<int64_t>> shapes = {
      {5, 7}, {3, 4, 6}, {1, 9}, {2, 3, 2, 4}, {8, 3}, {4, 1, 5}};
  const std::vector<std::shared_ptr<arrow::DataType>> value_types = {
      arrow::float64(), arrow::float32(), arrow::int32(), arrow::uint8(),
      arrow::int16(),   arrow::int64(),   arrow::uint16(), arrow::int8()};
  const std::vector<std::shared_ptr<arrow::DataType>> index_types = {
      arrow::int8(), arrow::int16(), arrow::int32(), arrow::int64()};
  const std::vector<std::string> formats = {"coo", "csr", "csc", "csf"};
  std::ostringstream list;
  list << "[\n";
  int count = 0;
  size_t value_pick = 0;
  for (size_t s = 0; s < shapes.size(); ++s) {
    const auto& shape = shapes[s];
    int64_t n = 1;
    for (auto d : shape) n *= d;
    for (const auto& format : formats) {
      if ((format == "csr" || format == "csc") && shape.size() != 2) continue;
      for (const auto& index : index_types) {
        const auto& type = value_types[value_pick++ % value_types.size()];
        std::vector<double> values(n);
        for (auto& v : values) v = (rng() % 3 == 0) ? static_cast<double>(rng() % 90 + 1) : 0.0;
        auto dense = MakeDense(type, shape, values);
        auto sparse = Convert(format, *dense, index);
        std::string file = "cpp_" + std::to_string(s) + "_" + format + "_" + Name(type) +
                           "_idx_" + Name(index) + ".arrow_sparse_tensor";
        auto out = Check(arrow::io::FileOutputStream::Open(dir + "/" + file), "open " + file);
        int32_t metadata_length = 0;
        int64_t body_length = 0;
        Check(arrow::ipc::WriteSparseTensor(*sparse, out.get(), &metadata_length, &body_length),
              "WriteSparseTensor " + file);
        Check(out->Close(), "close " + file);
        list << (count ? ",\n" : "") << "{\"file\":" << JsonString(file)
             << ",\"format\":" << JsonString(format) << ",\"dtype\":" << JsonString(Name(type))
             << ",\"index_type\":" << JsonString(Name(index)) << ",\"shape\":" << Join(shape)
             << ",\"dense\":" << JsonNumbers(values) << "}";
        ++count;
      }
    }
  }
  list << "\n]\n";
  auto out = Check(arrow::io::FileOutputStream::Open(dir + "/vectors.json"), "open vectors.json");
  std::string text = list.str();
  Check(out->Write(text.data(), static_cast<int64_t>(text.size())), "write vectors.json");
  Check(out->Close(), "close vectors.json");
  std::cout << count << " vectors in " << dir << std::endl;
  return 0;
}

int Read(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    auto file = arrow::io::ReadableFile::Open(argv[i]);
    if (!file.ok()) {
      std::cout << "{\"ok\":false,\"error\":" << JsonString(file.status().ToString()) << "}\n";
      continue;
    }
    auto sparse = arrow::ipc::ReadSparseTensor(file->get());
    if (!sparse.ok()) {
      std::cout << "{\"ok\":false,\"error\":" << JsonString(sparse.status().ToString()) << "}\n";
      continue;
    }
    auto dense = (*sparse)->ToTensor();
    if (!dense.ok()) {
      std::cout << "{\"ok\":false,\"error\":" << JsonString(dense.status().ToString()) << "}\n";
      continue;
    }
    std::cout << "{\"ok\":true,\"format\":" << JsonString((*sparse)->sparse_index()->ToString())
              << ",\"nnz\":" << (*sparse)->non_zero_length()
              << ",\"dense\":" << JsonNumbers(ToDoubles(**dense)) << "}\n";
  }
  return 0;
}

int Bench(int64_t rows, int64_t cols, double density, int reps, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<float> values(rows * cols);
  for (auto& v : values) v = unit(rng) < density ? static_cast<float>(unit(rng) + 0.5) : 0.0f;
  auto buffer = arrow::Buffer::Wrap(values);
  auto dense = Check(arrow::Tensor::Make(arrow::float32(), buffer, {rows, cols}), "Tensor");
  auto time = [&](auto&& convert) {
    std::vector<int64_t> ns;
    for (int r = 0; r < reps; ++r) {
      auto start = std::chrono::steady_clock::now();
      auto result = convert();
      auto stop = std::chrono::steady_clock::now();
      if (!result.ok()) Die(result.status().ToString());
      ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count());
    }
    std::sort(ns.begin(), ns.end());
    return ns[ns.size() / 2];
  };
  int64_t coo = time([&] { return arrow::SparseCOOTensor::Make(*dense); });
  int64_t csr = time([&] { return arrow::SparseCSRMatrix::Make(*dense); });
  auto nnz = Check(dense->CountNonZero(), "CountNonZero");
  std::cout << "{\"rows\":" << rows << ",\"cols\":" << cols << ",\"nnz\":" << nnz
            << ",\"reps\":" << reps << ",\"coo_median_ns\":" << coo
            << ",\"csr_median_ns\":" << csr << "}" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "write" && argc == 4) return Write(argv[2], std::stoull(argv[3]));
  if (mode == "read") return Read(argc, argv);
  if (mode == "bench" && argc == 7) {
    return Bench(std::stoll(argv[2]), std::stoll(argv[3]), std::stod(argv[4]),
                 std::stoi(argv[5]), std::stoull(argv[6]));
  }
  std::cerr << "usage: sparse_vectors write DIR SEED | read FILE... | "
               "bench ROWS COLS DENSITY REPS SEED"
            << std::endl;
  return 2;
}
