# One image for every service (workers, beat, flower, migrate); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# no embedded PostgreSQL/Redis in a container: an unset DATABASE_URL/REDIS_URL is an error
ENV QUANTPIPE_EMBEDDED=false
RUN useradd --create-home --uid 1000 quantpipe && mkdir -p /var/lib/quantpipe && chown quantpipe /var/lib/quantpipe
WORKDIR /app
COPY pyproject.toml README.md alembic.ini celeryconfig.py ./
COPY shared_models ./shared_models
COPY quant_shared ./quant_shared
COPY loaders ./loaders
COPY shadowwatch ./shadowwatch
COPY workers ./workers
COPY cli ./cli
COPY api ./api
COPY migrations ./migrations
RUN pip install .
COPY data ./data
USER quantpipe
CMD ["quantpipe", "--help"]
