# petbind BIDS-App image.
#   docker build -t petbind:0.2.0 --build-arg VERSION=0.2.0 --build-arg VCS_REF=$(git rev-parse HEAD) .
# BASE: any Debian bookworm (Python 3.11) image; CI passes one made locally from the Debian mirror.
ARG BASE=docker.io/library/debian:bookworm-slim

# ---- build: one virtual environment from the pinned dependency set (constraints.txt) ----------
FROM ${BASE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY constraints.txt /src/constraints.txt
COPY pyproject.toml README.md /src/
COPY bids_app /src/bids_app
COPY workflows /src/workflows
# the pip cache is a build cache mount: rebuilds download nothing, and it never enters the image.
# The packages' own test suites (about 190 MB) and pip itself are not needed at run time.
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/petbind \
 && /opt/petbind/bin/pip install --quiet -c /src/constraints.txt /src \
 && find /opt/petbind/lib -depth -type d -name tests -exec rm -rf {} + \
 && /opt/petbind/bin/pip uninstall --quiet -y pip

# ---- runtime: the base, Python and the venv; no compilers, nothing fetched at run time ---------
FROM ${BASE}
ARG VERSION=dev
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="petbind" \
      org.opencontainers.image.description="BIDS-App for PET receptor imaging: BPND maps per participant (SRTM basis functions) and group statistics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="https://github.com/petbind/petbind" \
      org.opencontainers.image.licenses="Apache-2.0 AND BSD-3-Clause" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 --user-group --shell /bin/bash petbind \
 && install -d -m 1777 /work
COPY --from=build /opt/petbind /opt/petbind
# One thread per process unless --omp-nthreads says otherwise; no nipype telemetry; a home (caches)
# and the default nipype work directory that any user id (docker run -u UID) can write.
ENV PATH=/opt/petbind/bin:$PATH \
    NIPYPE_NO_ET=1 \
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 \
    HOME=/home/petbind \
    PETBIND_WORK_DIR=/work
USER 1000:1000
WORKDIR /home/petbind
# the install works, and matplotlib's font cache is built once here rather than at every start
RUN petbind --version && python3 -c "import matplotlib.pyplot" && chmod -R a+rwX /home/petbind
ENTRYPOINT ["petbind"]
