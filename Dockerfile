# The eksir fleet worker: `eksir serve`, run by the ECS Fargate service of `eksir deploy template`.
#
# Why this shape:
# - Every Python package comes from the hash-checked lock (`pip install --require-hashes --no-deps`):
#   requirements/runtime.lock is requirements/dev.lock (what `make test` passed with) cut to eksir's run-time
#   dependencies and its build backend (scripts/runtime_lock.py, run by `make lock`), same pins, same hashes.
#   Nothing is resolved at build time and no test tool lands in the image.
# - eksir itself is installed with --no-deps --no-build-isolation, so its build backend (hatchling) also comes
#   from the lock.
# - Two stages: the final image has the virtual environment, not the build context.
# - The worker runs as an unprivileged user (uid 10001); its home holds eksir's config (the case signing key
#   is created there on first use: mount or inject a persistent one in production, README "Deploying fleet
#   mode").
# - The base image is pinned to a full version tag; pin its digest too when you build for release
#   (`docker buildx imagetools inspect python:3.11.11-slim-bookworm`). Not built in CI: there is no Docker
#   engine there; tests/test_dockerfile.py checks these rules.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements/runtime.lock requirements/runtime.lock
RUN python -m venv /opt/eksir \
    && /opt/eksir/bin/python -m pip install --require-hashes --no-deps -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/eksir/bin/python -m pip install --no-deps --no-build-isolation . \
    && /opt/eksir/bin/python -m pip check

FROM python:3.11.11-slim-bookworm
COPY --from=build /opt/eksir /opt/eksir
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/eksir eksir
ENV PATH=/opt/eksir/bin:$PATH PYTHONUNBUFFERED=1 HOME=/home/eksir
USER 10001:10001
WORKDIR /home/eksir
ENTRYPOINT ["eksir", "serve"]
