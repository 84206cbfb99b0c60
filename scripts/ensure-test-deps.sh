#!/usr/bin/env bash
# Installs the system tools the e2e tests drive, if any is missing:
#   skopeo, podman, buildah        real OCI clients (containers/image); buildah is the example
#                                  GitHub Actions workflow's client
#   containerd, ctr                what kubelets pull with (the pull-through cache's mirror tests)
#   docker-registry                CNCF Distribution 2.8, the reference registry
#   etcd, kube-apiserver           a real Kubernetes API server (scripts/kube-apiserver/build.sh)
#   htpasswd (apache2-utils)       bcrypt htpasswd files for Distribution with Basic auth (import tests)
#   PostgreSQL (postgresql)        the scale-out metadata database (scripts/postgres/start.sh)
#   radosgw, ceph-mon, ceph-osd    Ceph's S3-compatible gateway on an in-memory OSD (scripts/s3/start.sh)
#   chromium                       Debian's Chromium, driven by playwright-core in the console's browser tests
# Idempotent and quick when everything is present (no apt calls at all).
# Non-interactive: safe under CI=true with no stdin. Needs root (or sudo) to install.
set -euo pipefail

# The Kubernetes tests' API server: Debian's etcd-server and Go, and kube-apiserver v1.20 built from
# Debian's source package into .cache/kube (about 5 minutes once; skipped when cached).
bash "$(dirname "$0")/kube-apiserver/build.sh"

# command -> Debian package providing it
declare -A PACKAGE_FOR=(
  [skopeo]=skopeo
  [podman]=podman
  [buildah]=buildah
  [containerd]=containerd
  [ctr]=containerd
  [docker-registry]=docker-registry
  [htpasswd]=apache2-utils
  [radosgw]=radosgw
  [ceph-mon]=ceph-mon
  [ceph-osd]=ceph-osd
  [ceph]=ceph-common
  [chromium]=chromium
)

missing=()
for cmd in "${!PACKAGE_FOR[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGE_FOR[$cmd]}")
done
# PostgreSQL's server binaries are not on PATH in Debian; look for initdb where the package puts it.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "ensure-test-deps: skopeo, podman, buildah, containerd, docker-registry, htpasswd, PostgreSQL, Ceph and Chromium are present"
  exit 0
fi

echo "ensure-test-deps: installing ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "ensure-test-deps: need root to install ${missing[*]} (no sudo available)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# docker-registry's maintainer scripts would start the packaged service on
# :5000; the tests run their own instances, so forbid service starts during
# the install (policy-rc.d exit 101 = "action forbidden"), unless the machine
# already has its own policy, which is then left alone.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 0755 "$policy"
  added_policy=1
fi
remove_policy() {
  if [ "$added_policy" -eq 1 ]; then "${as_root[@]}" rm -f "$policy"; fi
}
trap remove_policy EXIT

"${as_root[@]}" apt-get update -q </dev/null
# Recommends (fuse-overlayfs, slirp4netns, ...) are not needed to pull
# and push images with vfs storage; skip them to keep the install small.
"${as_root[@]}" apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null

compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { echo "ensure-test-deps: PostgreSQL's initdb still missing" >&2; exit 1; }
for cmd in "${!PACKAGE_FOR[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "ensure-test-deps: $cmd still missing after installing ${missing[*]}" >&2
    exit 1
  fi
done
echo "ensure-test-deps: done"
