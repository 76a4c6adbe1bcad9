# One image, several commands: `paperboy serve`, `celery ... worker`, `celery ... beat`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 PAPERBOY_DATA_DIR=/data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY recsys ./recsys
COPY workers ./workers
COPY api ./api
COPY experiments ./experiments
RUN pip install --no-cache-dir . && useradd --create-home paperboy && mkdir -p /data \
    && chown paperboy /data
USER paperboy
VOLUME ["/data"]
EXPOSE 8000

CMD ["paperboy", "serve", "--host", "0.0.0.0", "--port", "8000"]
