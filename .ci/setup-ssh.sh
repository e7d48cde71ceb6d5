#!/usr/bin/env bash
# The SSH backend's tests start a private sshd on 127.0.0.1; they need the binaries.
set -euo pipefail
if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends openssh-server openssh-client
fi
