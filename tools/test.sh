#!/usr/bin/env bash
# Run schemaiso's test suite the way CI does: tox over the Python x Django matrix,
# against a throwaway PostgreSQL that tools/pgserver.py starts (or DATABASE_URL).
# Arguments go to tox, e.g. `bash tools/test.sh -e py311-django52 -- -k isolation`.
set -euo pipefail
cd "$(dirname "$0")/.."

# tox needs every interpreter of its matrix on PATH; pyenv keeps them in its root.
# 3.11 goes first so that plain python3 stays the machine's default.
if command -v pyenv >/dev/null 2>&1 || [ -d "${HOME}/.pyenv" ]; then
    pyenv_root="$(pyenv root 2>/dev/null || echo "${HOME}/.pyenv")"
    interpreters=""
    for version in 3.11 3.12; do
        dir="$(ls -d "${pyenv_root}/versions/${version}".* 2>/dev/null | sort -V | tail -n 1 || true)"
        if [ -n "${dir}" ]; then
            interpreters="${interpreters}${dir}/bin:"
        fi
    done
    PATH="${interpreters}${PATH}"
    export PATH
fi

# PostGIS (tests/test_postgis.py) comes from Debian, for the server's major version;
# it brings the GDAL and GEOS libraries django.contrib.gis loads.
pg_major="$(postgres --version 2>/dev/null | sed -E 's/.* ([0-9]+)\..*/\1/')"
if [ -z "${pg_major}" ]; then
    pg_major="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)"
fi
postgis="postgresql-${pg_major}-postgis-3"
if ! dpkg-query -W -f='${Status}' "${postgis}" 2>/dev/null | grep -q "install ok installed"; then
    if [ "$(id -u)" = 0 ]; then
        echo "tools/test.sh: installing ${postgis} from Debian" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${postgis}" >/dev/null
    else
        echo "tools/test.sh: the tests need PostGIS: sudo apt-get install ${postgis}" >&2
        exit 1
    fi
fi

# tox itself lives in a venv of the checkout, installed once from PyPI.
if [ ! -x .tox-venv/bin/tox ]; then
    python3 -m venv .tox-venv
    .tox-venv/bin/python -m pip install --quiet --disable-pip-version-check "tox>=4.20"
fi

# The server is thrown away after the run, so it need not survive a power cut:
# --fast turns fsync, synchronous_commit and full_page_writes off (every other
# setting stays at its default, which the tests rely on). The gain is small (the
# suite is bound by starting Python and Django in subprocesses: 2026-12-04, the
# full environment 1,098 s -> 966 s, a light one unchanged). Benchmarks run by
# hand start their own server, with fsync on; the suite's bench tests only check
# the scripts' output, never a time.
exec python3 tools/pgserver.py run --fast -- .tox-venv/bin/tox "$@"
