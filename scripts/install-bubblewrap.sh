#!/usr/bin/env bash
# The code jail (verticals.jail, docs/security.md) runs untrusted code only under bubblewrap (`bwrap`) with a
# seccomp filter from libseccomp; there is no unconfined fallback. This installs them when missing (Debian/Ubuntu,
# needs root or sudo), and a system python3, which the jail attack tests use to attack as an ordinary user; then
# checks that jailed runs get a cgroup each. Idempotent and fast when everything is there. Called by `make setup`.
set -euo pipefail

log() { echo "install-bubblewrap: $*" >&2; }

# at the end, whatever happened: say whether jailed runs get a cgroup each (their memory and process limits per
# run) for this uid, or only per-process limits (docs/security.md, "Limits per run")
check_cgroups() {
  if command -v python3 >/dev/null 2>&1; then
    python3 "$(dirname "$0")/delegate_jail_cgroup.py" --check || true
  fi
}
trap check_cgroups EXIT

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
[ -x /usr/bin/python3 ] || missing+=(python3-minimal)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "missing: ${missing[*]}; install them with your package manager (no apt-get here)."
  log "Without bubblewrap, tasks that run untrusted code (testgen.generate) refuse to run."
  exit 0
fi
if [ "$(id -u)" != "0" ] && [ -z "$SUDO" ]; then
  log "missing: ${missing[*]}; run as root: apt-get install ${missing[*]}"
  exit 0
fi
log "installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
