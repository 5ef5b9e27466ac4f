#!/usr/bin/env bash
# A real Azure Blob Storage server on loopback for the object-store backend's `az://` URLs:
# Azurite, Microsoft's emulator (npm package azurite), with its well-known development account
# and one container, created with Microsoft's own client (npm package @azure/storage-blob).
#
#   bash .ci/azurite.sh install            # target/azurite: azurite, @azure/storage-blob (idempotent)
#   bash .ci/azurite.sh run CMD [ARGS...]  # start a server on a free port, create the container
#        # `tensors`, export AZURE_STORAGE_USE_EMULATOR=true and AZURITE_BLOB_STORAGE_URL (as
#        # object_store reads them) and TENSOR_IPC_AZURE_CONTAINER, run CMD, stop the server;
#        # exits with CMD's status.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=server-common.sh
source "$root/.ci/server-common.sh"
dir="$root/target/azurite"
container="tensors"

install() {
  command -v npm >/dev/null || { echo "azurite: the Azure tests need node and npm on PATH" >&2; exit 1; }
  if [[ ! -x "$dir/node_modules/.bin/azurite-blob" || ! -d "$dir/node_modules/@azure/storage-blob" ]]; then
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund --no-save azurite@3 @azure/storage-blob@12 >&2)
  fi
  [[ -x "$dir/node_modules/.bin/azurite-blob" ]] || { echo "azurite: no azurite-blob in $dir" >&2; exit 1; }
}

run() {
  install
  mkdir -p "$dir/servers"
  local data port pid
  data="$(mktemp -d "$dir/servers/run.XXXXXX")"
  port="$(free_port)"
  "$dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --location "$data" --silent --skipApiVersionCheck >"$data/log" 2>&1 &
  pid=$!
  stop_on_exit "$pid" "$data"
  local url="http://127.0.0.1:$port"
  # Creates the container, retrying until the server answers (30 s at most).
  (cd "$dir" && node - "$url" "$container" <<'EOF_NODE'
const { BlobServiceClient, StorageSharedKeyCredential } = require("@azure/storage-blob");
const [url, container] = process.argv.slice(2);
const account = "devstoreaccount1";
const key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const client = new BlobServiceClient(`${url}/${account}`, new StorageSharedKeyCredential(account, key));
const deadline = Date.now() + 30000;
(async function create() {
  for (;;) {
    try { await client.getContainerClient(container).createIfNotExists(); return; }
    catch (e) {
      if (Date.now() > deadline) { console.error(`azurite: did not answer: ${e.message}`); process.exit(1); }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
})();
EOF_NODE
  ) || { cat "$data/log" >&2; exit 1; }
  export AZURE_STORAGE_USE_EMULATOR=true AZURITE_BLOB_STORAGE_URL="$url"
  export TENSOR_IPC_AZURE_CONTAINER="$container"
  echo "azurite: Azure Blob Storage emulator at $url (container $container)" >&2
  run_and_exit "$@"
}

server_main "$@"
