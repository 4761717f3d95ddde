# borderrisk scoring service with the demo models trained at build time.
# For your own models, mount a data folder with your MLflow registry at /app/data instead.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BORDERRISK_DATA_DIR=/app/data \
    BORDERRISK_HOST=0.0.0.0 \
    BORDERRISK_PORT=8000

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 borderrisk

WORKDIR /app
COPY pyproject.toml README.md ./
COPY borderrisk ./borderrisk
COPY features ./features
COPY models ./models
COPY training ./training
COPY service ./service
RUN pip install .

# Demo history and models, so the image serves out of the box.
RUN borderrisk generate cargo --rows 100000 --seed 7 --out /app/data/history/cargo.parquet \
    && borderrisk generate passenger --rows 100000 --seed 11 --out /app/data/history/passenger.parquet \
    && borderrisk train cargo --data /app/data/history/cargo.parquet \
    && borderrisk train passenger --data /app/data/history/passenger.parquet \
    && chown -R borderrisk /app/data

USER borderrisk
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD curl -fsS http://127.0.0.1:8000/readyz || exit 1
CMD ["borderrisk", "serve"]
