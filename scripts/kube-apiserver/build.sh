#!/usr/bin/env bash
# Builds the kube-apiserver the Kubernetes tests run against, once, into an ignored cache folder.
#
# Kubernetes v1.20.2 from Debian bookworm's `kubernetes` source package (its orig tarball is the
# upstream v1.20.2 tree with vendor/), compiled with Debian's Go 1.19; etcd is Debian's
# `etcd-server`. No network besides Debian's apt repositories. About 4-5 minutes cold on 2 cores;
# a second run finds the binary and returns at once (no apt calls).
#
# Adapted from ../shared/tools/kube-apiserver/build.sh; the three fixes it needs:
#   1. vendored github.com/modern-go/reflect2 v1.0.1 breaks at run time on Go >= 1.18: replaced by
#      Debian's 1.0.2 files;
#   2. GOPATH mode (GO111MODULE=off), as upstream's hack/lib for 1.20 does: module mode with Go 1.19
#      fails with "updates to go.mod needed";
#   3. `make generated_files` first: the tarball lacks pkg/generated/openapi/zz_generated.openapi.go.
#
# Env: KUBE_CACHE (default <repo>/.cache/kube). Output: $KUBE_CACHE/bin/kube-apiserver and a stamp.
# Needs root (or sudo) only when packages are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
KUBE_CACHE=${KUBE_CACHE:-$PWD/.cache/kube}
DEB_VER=1.20.5+really1.20.2-1.1+deb12u1
ORIG=kubernetes_1.20.5+really1.20.2.orig.tar.gz
ORIG_SHA256=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
STAMP_VALUE="v1.20.2 $DEB_VER build-1"
BIN=$KUBE_CACHE/bin/kube-apiserver
STAMP=$KUBE_CACHE/bin/kube-apiserver.stamp

if [[ -x $BIN && -f $STAMP && $(cat "$STAMP") == "$STAMP_VALUE" ]] && command -v etcd >/dev/null 2>&1; then
  echo "kube-apiserver: cached ($BIN)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then as_root=(); elif command -v sudo >/dev/null 2>&1; then as_root=(sudo -n); else
  echo "kube-apiserver build: need root to install packages (no sudo available)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
t0=$(date +%s)

# 1. toolchain, etcd, reflect2 1.0.2 (only what is missing; etcd-server must not start a service)
pkgs=(golang-go etcd-server golang-github-modern-go-reflect2-dev make rsync openssl)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if (( ${#missing[@]} )); then
  echo "kube-apiserver build: installing ${missing[*]}"
  policy=/usr/sbin/policy-rc.d; added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null; "${as_root[@]}" chmod 0755 "$policy"; added_policy=1
  fi
  trap '[ "$added_policy" -eq 1 ] && "${as_root[@]}" rm -f "$policy"' EXIT
  "${as_root[@]}" apt-get "${apt_opts[@]}" update </dev/null >/dev/null || true
  "${as_root[@]}" apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
command -v etcd >/dev/null || { echo "kube-apiserver build: etcd missing after installing etcd-server" >&2; exit 1; }

# 2. the source package (needs a deb-src line for bookworm)
mkdir -p "$KUBE_CACHE/debsrc" "$KUBE_CACHE/bin"
if [[ ! -f $KUBE_CACHE/debsrc/$ORIG ]]; then
  if ! apt-cache showsrc kubernetes 2>/dev/null | grep -qxF "Version: $DEB_VER"; then
    "${as_root[@]}" tee /etc/apt/sources.list.d/debian-src-bookworm.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    "${as_root[@]}" apt-get "${apt_opts[@]}" update </dev/null >/dev/null
  fi
  (cd "$KUBE_CACHE/debsrc" && apt-get source --download-only -q "kubernetes=$DEB_VER" 2>&1 | grep -v 'unsandboxed' || true)
fi
echo "$ORIG_SHA256  $KUBE_CACHE/debsrc/$ORIG" | sha256sum -c --quiet -

# 3. unpack the pristine upstream tree (Debian's patches only touch kubectl)
SRC=$KUBE_CACHE/src
GOPATH_DIR=$KUBE_CACHE/gopath
rm -rf "$SRC"; mkdir -p "$SRC"
tar xzf "$KUBE_CACHE/debsrc/$ORIG" -C "$SRC" --strip-components=1

# 4. fix 1: reflect2 1.0.2
R=$SRC/vendor/github.com/modern-go/reflect2
rm -f "$R"/*.go "$R"/*.s
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R"/

# 5. fix 2: GOPATH layout
mkdir -p "$GOPATH_DIR/src/k8s.io"
ln -sfn "$SRC" "$GOPATH_DIR/src/k8s.io/kubernetes"
export GOPATH=$GOPATH_DIR GO111MODULE=off GOFLAGS= GOPROXY=off CGO_ENABLED=0 GOCACHE=$KUBE_CACHE/gocache
cd "$GOPATH_DIR/src/k8s.io/kubernetes"

# 6. fix 3: generated code
t1=$(date +%s)
KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 \
  make generated_files >"$KUBE_CACHE/generated_files.log" 2>&1 || { tail -30 "$KUBE_CACHE/generated_files.log" >&2; exit 1; }
t2=$(date +%s)

# 7. build
LD=""
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  q=k8s.io/kubernetes/vendor/$p
  LD="$LD -X $q.gitVersion=v1.20.2 -X $q.gitMajor=1 -X $q.gitMinor=20 -X $q.gitTreeState=clean"
  LD="$LD -X $q.gitCommit=faecb196815e248d3ecfb03c680a4507229c2a56"
done
go build -ldflags "-s -w $LD" -o "$BIN.tmp" ./cmd/kube-apiserver
mv "$BIN.tmp" "$BIN"
t3=$(date +%s)
"$BIN" --version
echo "$STAMP_VALUE" > "$STAMP"
# the unpacked tree and go cache are ~1.5 GB and not needed to run; the tarball stays for a rebuild
cd /; rm -rf "$SRC" "$GOPATH_DIR" "$KUBE_CACHE/gocache"
echo "kube-apiserver: built in $(( t3 - t0 ))s (generated_files $(( t2 - t1 ))s, go build $(( t3 - t2 ))s)"
