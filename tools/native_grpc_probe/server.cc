// Minimal native KServe v2 / Triton gRPC front end, for measuring transport cost only
// (tools/native_grpc_probe/README.md). Not part of rigserve.
//
// Serves one model (default "rig.depth+lidar+wifi") with the metadata and config rigserve
// answers for it. ModelInfer checks the shape and size of every raw input buffer and
// touches each of its cache lines, optionally busy-waits N microseconds (a stand-in for
// the engine: no ONNX Runtime here) and answers fixed-size FP32 outputs.
// Two gRPC C++ APIs: sync (the classic thread-pool service) and callback (reactors that
// run the handler inline on gRPC's own threads). Prints "ready ..." once it listens.
//
//   native_server --port P --api sync|callback [--busy-us N] [--model NAME]
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "grpc_service.grpc.pb.h"

namespace inf = inference;

namespace {

struct Io {
  const char* name;
  std::vector<int64_t> dims;  // without batch axis
};

const std::vector<Io> kInputs = {
    {"depth", {1, 48, 64}}, {"lidar", {256, 4}}, {"wifi", {3, 114, 10}}};
const std::vector<Io> kOutputs = {{"joints", {17, 3}}, {"action_logits", {27}}};

std::string g_model = "rig.depth+lidar+wifi";
int g_busy_us = 0;
std::atomic<uint64_t> g_count{0}, g_errors{0};
std::atomic<uint64_t> g_sink{0};

int64_t dtype_size(const std::string& dt) {
  if (dt == "FP32" || dt == "INT32" || dt == "UINT32") return 4;
  if (dt == "FP64" || dt == "INT64" || dt == "UINT64") return 8;
  if (dt == "FP16" || dt == "BF16" || dt == "INT16" || dt == "UINT16") return 2;
  if (dt == "INT8" || dt == "UINT8" || dt == "BOOL") return 1;
  return -1;
}

void busy_wait(int us) {
  if (us <= 0) return;
  auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < end) {
  }
}

bool known_model(const std::string& name) { return name == g_model || name == "rig"; }

// ---- request handlers shared by both APIs ------------------------------------------------

grpc::Status do_model_metadata(const inf::ModelMetadataRequest* req,
                               inf::ModelMetadataResponse* resp) {
  if (!known_model(req->name())) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no model");
  resp->set_name(req->name());
  resp->add_versions("1");
  resp->set_platform("onnxruntime_onnx");
  auto fill = [](const Io& io, inf::ModelMetadataResponse::TensorMetadata* t) {
    t->set_name(io.name);
    t->set_datatype("FP32");
    t->add_shape(-1);
    for (auto d : io.dims) t->add_shape(d);
  };
  for (auto& io : kInputs) fill(io, resp->add_inputs());
  for (auto& io : kOutputs) fill(io, resp->add_outputs());
  return grpc::Status::OK;
}

grpc::Status do_model_config(const inf::ModelConfigRequest* req,
                             inf::ModelConfigResponse* resp) {
  if (!known_model(req->name())) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no model");
  auto* c = resp->mutable_config();
  c->set_name(req->name());
  c->set_platform("onnxruntime_onnx");
  c->set_backend("onnxruntime");
  c->set_max_batch_size(32);
  c->mutable_version_policy()->mutable_latest()->set_num_versions(1);
  for (auto& io : kInputs) {
    auto* in = c->add_input();
    in->set_name(io.name);
    in->set_data_type(inf::TYPE_FP32);
    for (auto d : io.dims) in->add_dims(d);
  }
  for (auto& io : kOutputs) {
    auto* out = c->add_output();
    out->set_name(io.name);
    out->set_data_type(inf::TYPE_FP32);
    for (auto d : io.dims) out->add_dims(d);
  }
  auto* ig = c->add_instance_group();
  ig->set_name(req->name());
  ig->set_count(1);
  ig->set_kind(inf::ModelInstanceGroup::KIND_CPU);
  return grpc::Status::OK;
}

grpc::Status do_model_statistics(const inf::ModelStatisticsRequest* req,
                                 inf::ModelStatisticsResponse* resp) {
  uint64_t n = g_count.load();
  auto* s = resp->add_model_stats();
  s->set_name(req->name().empty() ? g_model : req->name());
  s->set_version("1");
  s->set_inference_count(n);
  s->set_execution_count(n);
  auto* st = s->mutable_inference_stats();
  for (auto* d : {st->mutable_success(), st->mutable_queue(), st->mutable_compute_input(),
                  st->mutable_compute_infer(), st->mutable_compute_output()})
    d->set_count(n);
  return grpc::Status::OK;
}

grpc::Status fail(const std::string& msg) {
  g_errors.fetch_add(1, std::memory_order_relaxed);
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg);
}

grpc::Status do_model_infer(const inf::ModelInferRequest* req, inf::ModelInferResponse* resp) {
  if (!known_model(req->model_name())) return fail("unknown model " + req->model_name());
  if (req->inputs_size() != static_cast<int>(kInputs.size()) ||
      req->raw_input_contents_size() != req->inputs_size())
    return fail("expected 3 inputs with raw_input_contents");
  int64_t batch = -1;
  uint64_t sum = 0;
  for (auto& want : kInputs) {
    int idx = -1;
    for (int i = 0; i < req->inputs_size(); ++i)
      if (req->inputs(i).name() == want.name) idx = i;
    if (idx < 0) return fail(std::string("missing input ") + want.name);
    const auto& t = req->inputs(idx);
    int64_t esize = dtype_size(t.datatype());
    if (t.datatype() != "FP32") return fail("input " + t.name() + " is not FP32");
    if (t.shape_size() != static_cast<int>(want.dims.size()) + 1)
      return fail("bad rank for " + t.name());
    int64_t n = 1;
    for (int d = 0; d < t.shape_size(); ++d) {
      if (d > 0 && t.shape(d) != want.dims[d - 1]) return fail("bad shape for " + t.name());
      n *= t.shape(d);
    }
    if (batch < 0) batch = t.shape(0);
    if (t.shape(0) != batch || batch < 1) return fail("inconsistent batch");
    const std::string& raw = req->raw_input_contents(idx);
    if (static_cast<int64_t>(raw.size()) != n * esize)
      return fail("raw size mismatch for " + t.name());
    // Touch every cache line of the buffer (and the last byte).
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    for (size_t o = 0; o < raw.size(); o += 64) sum += p[o];
    if (!raw.empty()) sum += p[raw.size() - 1];
  }
  g_sink.fetch_add(sum, std::memory_order_relaxed);

  busy_wait(g_busy_us);

  resp->set_model_name(req->model_name());
  resp->set_model_version("1");
  resp->set_id(req->id());
  float v = static_cast<float>(sum & 0xff) * 1e-3f;
  for (auto& io : kOutputs) {
    bool wanted = req->outputs_size() == 0;
    for (auto& o : req->outputs())
      if (o.name() == io.name) wanted = true;
    if (!wanted) continue;
    auto* out = resp->add_outputs();
    out->set_name(io.name);
    out->set_datatype("FP32");
    out->add_shape(batch);
    int64_t n = batch;
    for (auto d : io.dims) {
      out->add_shape(d);
      n *= d;
    }
    std::string* raw = resp->add_raw_output_contents();
    raw->resize(n * sizeof(float));
    auto* f = reinterpret_cast<float*>(raw->data());
    for (int64_t i = 0; i < n; ++i) f[i] = v + static_cast<float>(i);
  }
  g_count.fetch_add(1, std::memory_order_relaxed);
  return grpc::Status::OK;
}

// ---- sync API ----------------------------------------------------------------------------

class SyncService final : public inf::GRPCInferenceService::Service {
  grpc::Status ServerLive(grpc::ServerContext*, const inf::ServerLiveRequest*,
                          inf::ServerLiveResponse* r) override {
    r->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const inf::ServerReadyRequest*,
                           inf::ServerReadyResponse* r) override {
    r->set_ready(true);
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const inf::ModelReadyRequest* q,
                          inf::ModelReadyResponse* r) override {
    r->set_ready(known_model(q->name()));
    return grpc::Status::OK;
  }
  grpc::Status ServerMetadata(grpc::ServerContext*, const inf::ServerMetadataRequest*,
                              inf::ServerMetadataResponse* r) override {
    r->set_name("native-cpp");
    r->set_version("0");
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext*, const inf::ModelMetadataRequest* q,
                             inf::ModelMetadataResponse* r) override {
    return do_model_metadata(q, r);
  }
  grpc::Status ModelConfig(grpc::ServerContext*, const inf::ModelConfigRequest* q,
                           inf::ModelConfigResponse* r) override {
    return do_model_config(q, r);
  }
  grpc::Status ModelStatistics(grpc::ServerContext*, const inf::ModelStatisticsRequest* q,
                               inf::ModelStatisticsResponse* r) override {
    return do_model_statistics(q, r);
  }
  grpc::Status ModelInfer(grpc::ServerContext*, const inf::ModelInferRequest* q,
                          inf::ModelInferResponse* r) override {
    return do_model_infer(q, r);
  }
};

// ---- callback API (handlers run inline on gRPC's callback threads) ------------------------

class CallbackService final : public inf::GRPCInferenceService::CallbackService {
  template <class F>
  static grpc::ServerUnaryReactor* reply(grpc::CallbackServerContext* ctx, F&& f) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(f());
    return reactor;
  }
  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* c,
                                       const inf::ServerLiveRequest*,
                                       inf::ServerLiveResponse* r) override {
    return reply(c, [&] { r->set_live(true); return grpc::Status::OK; });
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* c,
                                        const inf::ServerReadyRequest*,
                                        inf::ServerReadyResponse* r) override {
    return reply(c, [&] { r->set_ready(true); return grpc::Status::OK; });
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* c,
                                       const inf::ModelReadyRequest* q,
                                       inf::ModelReadyResponse* r) override {
    return reply(c, [&] { r->set_ready(known_model(q->name())); return grpc::Status::OK; });
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* c,
                                           const inf::ServerMetadataRequest*,
                                           inf::ServerMetadataResponse* r) override {
    return reply(c, [&] {
      r->set_name("native-cpp");
      r->set_version("0");
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* c,
                                          const inf::ModelMetadataRequest* q,
                                          inf::ModelMetadataResponse* r) override {
    return reply(c, [&] { return do_model_metadata(q, r); });
  }
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* c,
                                        const inf::ModelConfigRequest* q,
                                        inf::ModelConfigResponse* r) override {
    return reply(c, [&] { return do_model_config(q, r); });
  }
  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* c,
                                            const inf::ModelStatisticsRequest* q,
                                            inf::ModelStatisticsResponse* r) override {
    return reply(c, [&] { return do_model_statistics(q, r); });
  }
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* c,
                                       const inf::ModelInferRequest* q,
                                       inf::ModelInferResponse* r) override {
    return reply(c, [&] { return do_model_infer(q, r); });
  }
};

}  // namespace

int main(int argc, char** argv) {
  int port = 18201;
  std::string api = "sync";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port") port = std::stoi(next());
    else if (a == "--api") api = next();
    else if (a == "--busy-us") g_busy_us = std::stoi(next());
    else if (a == "--model") g_model = next();
    else {
      std::fprintf(stderr, "usage: %s --port P --api sync|callback [--busy-us N] [--model M]\n",
                   argv[0]);
      return 2;
    }
  }
  SyncService sync_service;
  CallbackService callback_service;
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials());
  if (api == "sync") builder.RegisterService(&sync_service);
  else if (api == "callback") builder.RegisterService(&callback_service);
  else {
    std::fprintf(stderr, "--api must be sync or callback\n");
    return 2;
  }
  auto server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "could not start on port %d\n", port);
    return 1;
  }
  std::printf("ready api=%s port=%d busy_us=%d grpc=%s\n", api.c_str(), port, g_busy_us,
              grpc::Version().c_str());
  std::fflush(stdout);
  server->Wait();
  std::fprintf(stderr, "served %llu errors %llu sink %llu\n",
               (unsigned long long)g_count.load(), (unsigned long long)g_errors.load(),
               (unsigned long long)g_sink.load());
  return 0;
}
