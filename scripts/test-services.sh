#!/usr/bin/env bash
# What the test suite needs beside Python packages: PostgreSQL running and Debian's Chromium.
# Installs what is missing when it can (root with apt-get); otherwise says so, and the tests that
# need it are skipped with that reason (outside CI, where they fail instead).
set -uo pipefail

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 && can_install; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | head -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi

if ! command -v chromium >/dev/null 2>&1; then
  if can_install; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed: the browser tests will be skipped (apt-get install chromium)"
  fi
fi
exit 0
