#!/bin/sh
# Build the native KServe v2 gRPC probe server from the repo's own protos (read in place):
#   build/native_grpc_probe/gen/            C++ generated from proto/*.proto
#   build/native_grpc_probe/native_server   the server (server.cc)
# Needs Debian's libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev pkg-config
# (`make native-probe` installs them). Skips the ~45 s compile when nothing changed.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOL="$ROOT/tools/native_grpc_probe"
OUT="$ROOT/build/native_grpc_probe"
PROTOS="grpc_service.proto model_config.proto"

missing=""
command -v protoc >/dev/null 2>&1 || missing="$missing protoc"
command -v grpc_cpp_plugin >/dev/null 2>&1 || missing="$missing grpc_cpp_plugin"
if ! command -v pkg-config >/dev/null 2>&1; then
  missing="$missing pkg-config"
elif ! pkg-config --exists grpc++ protobuf; then
  missing="$missing pkg-config:grpc++/protobuf"
fi
if [ -n "$missing" ]; then
  echo "build.sh: missing$missing; install the Debian packages" >&2
  echo "  apt-get install libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev pkg-config" >&2
  exit 1
fi

SRC="$TOOL/server.cc $TOOL/build.sh"
for p in $PROTOS; do SRC="$SRC $ROOT/proto/$p"; done
if [ -x "$OUT/native_server" ]; then
  stale=0
  for f in $SRC; do [ "$f" -nt "$OUT/native_server" ] && stale=1; done
  if [ "$stale" = 0 ]; then
    echo "build.sh: $OUT/native_server is up to date"
    exit 0
  fi
fi

rm -rf "$OUT/gen"
mkdir -p "$OUT/gen"
# shellcheck disable=SC2086  # PROTOS is a word list
(cd "$ROOT/proto" && protoc -I. --cpp_out="$OUT/gen" --grpc_out="$OUT/gen" \
  --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" $PROTOS)
echo "build.sh: compiling $OUT/native_server (about 45 s on 2 cores)"
# shellcheck disable=SC2046  # pkg-config output is a word list
g++ -std=c++17 -O2 -DNDEBUG -I"$OUT/gen" "$TOOL/server.cc" \
  "$OUT/gen/grpc_service.pb.cc" "$OUT/gen/grpc_service.grpc.pb.cc" \
  "$OUT/gen/model_config.pb.cc" "$OUT/gen/model_config.grpc.pb.cc" \
  -o "$OUT/native_server" $(pkg-config --cflags --libs grpc++ protobuf) -lpthread
echo "build.sh: built $OUT/native_server"
