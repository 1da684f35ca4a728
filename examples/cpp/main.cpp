// dislomob_velocities: nodal velocities of a dislocation network from the exported mobility law.
//
// Usage: dislomob_velocities LAW.pt2 INPUT.txt
// LAW.pt2 is the AOTInductor package written by `dislomob export`; INPUT.txt is a network in the
// contract layout written by dislomob.export.textio.write_input (format: docs/export_contract.md).
// Prints one line per node: network node index, velocity x y z (m/s), sigma (m/s).
// This is the call a DDD code (MoDELib, ExaDiS) makes: build the ten input tensors, run the package.

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

void expect(std::istream& in, const std::string& word) {
  std::string got;
  if (!(in >> got) || got != word) {
    throw std::runtime_error("input file: expected '" + word + "', got '" + got + "'");
  }
}

template <typename T>
T read(std::istream& in, const std::string& what) {
  T value;
  if (!(in >> value)) throw std::runtime_error("input file: cannot read " + what);
  return value;
}

struct Inputs {
  int64_t n = 0, q = 0;
  std::vector<double> positions, burgers, normals, cell, q_u, q_stress, temperature;
  std::vector<int64_t> node_of, segments, flags, q_segment;
};

Inputs read_inputs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open input file " + path);
  Inputs x;
  expect(in, "dislomob-export-input");
  if (read<int>(in, "format version") != 1) throw std::runtime_error("input file: format version must be 1");
  expect(in, "nodes");
  x.n = read<int64_t>(in, "node count");
  expect(in, "quadrature");
  x.q = read<int64_t>(in, "quadrature point count");
  if (x.n < 2 || x.q < x.n) throw std::runtime_error("input file: need nodes >= 2 and quadrature >= nodes");
  expect(in, "temperature_k");
  x.temperature.push_back(read<double>(in, "temperature"));
  expect(in, "cell");
  for (int k = 0; k < 9; ++k) x.cell.push_back(read<double>(in, "cell"));
  expect(in, "node_rows");
  std::vector<int> has_point(x.n, 0);
  for (int64_t g = 0; g < x.n; ++g) {
    x.node_of.push_back(read<int64_t>(in, "node index"));
    for (int k = 0; k < 3; ++k) x.positions.push_back(read<double>(in, "position"));
    int64_t end = read<int64_t>(in, "segment end");
    if (end < 0 || end >= x.n) throw std::runtime_error("input file: segment " + std::to_string(g) + " ends at node " + std::to_string(end) + ", out of range");
    x.segments.push_back(g);
    x.segments.push_back(end);
    for (int k = 0; k < 3; ++k) x.burgers.push_back(read<double>(in, "Burgers vector"));
    for (int k = 0; k < 3; ++k) x.normals.push_back(read<double>(in, "normal"));
    x.flags.push_back(read<int64_t>(in, "node flags"));
  }
  expect(in, "quadrature_rows");
  for (int64_t p = 0; p < x.q; ++p) {
    int64_t seg = read<int64_t>(in, "quadrature segment");
    if (seg < 0 || seg >= x.n) throw std::runtime_error("input file: quadrature point " + std::to_string(p) + " on segment " + std::to_string(seg) + ", out of range");
    has_point[seg] = 1;
    x.q_segment.push_back(seg);
    x.q_u.push_back(read<double>(in, "quadrature u"));
    for (int k = 0; k < 9; ++k) x.q_stress.push_back(read<double>(in, "quadrature stress"));
  }
  for (int64_t g = 0; g < x.n; ++g) {
    if (!has_point[g]) throw std::runtime_error("input file: segment " + std::to_string(g) + " has no quadrature point");
  }
  return x;
}

at::Tensor f64(std::vector<double>& v, std::vector<int64_t> shape) {
  return at::from_blob(v.data(), shape, at::kDouble).clone();
}

at::Tensor i64(std::vector<int64_t>& v, std::vector<int64_t> shape) {
  return at::from_blob(v.data(), shape, at::kLong).clone();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " LAW.pt2 INPUT.txt\n";
    return 2;
  }
  try {
    Inputs x = read_inputs(argv[2]);
    // Contract order: positions, segments, burgers, normals, cell, q_segment, q_u, q_stress, temperature_k, node_flags
    std::vector<at::Tensor> inputs = {
        f64(x.positions, {x.n, 3}), i64(x.segments, {x.n, 2}), f64(x.burgers, {x.n, 3}), f64(x.normals, {x.n, 3}),
        f64(x.cell, {3, 3}),        i64(x.q_segment, {x.q}),  f64(x.q_u, {x.q}),        f64(x.q_stress, {x.q, 3, 3}),
        f64(x.temperature, {1}),    i64(x.flags, {x.n})};
    torch::inductor::AOTIModelPackageLoader law(argv[1]);
    std::vector<at::Tensor> out = law.run(inputs);
    at::Tensor velocity = out.at(0).contiguous(), sigma = out.at(1).contiguous();
    const double* v = velocity.data_ptr<double>();
    const double* s = sigma.data_ptr<double>();
    std::printf("# node vx_m_per_s vy_m_per_s vz_m_per_s sigma_m_per_s\n");
    for (int64_t g = 0; g < x.n; ++g) {
      std::printf("%lld %.17g %.17g %.17g %.17g\n", static_cast<long long>(x.node_of[g]), v[3 * g], v[3 * g + 1],
                  v[3 * g + 2], s[g]);
    }
  } catch (const std::exception& err) {
    std::cerr << "dislomob_velocities: error: " << err.what() << "\n";
    return 1;
  }
  return 0;
}
