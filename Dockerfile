# Build stage: a wheel and its dependencies, with compilers available.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY partners ./partners
COPY api ./api
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Run stage: only the installed wheels, as an unprivileged user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PARTNERLOOP_ENVIRONMENT=production
RUN useradd --system --create-home --uid 10001 partnerloop
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER partnerloop
WORKDIR /home/partnerloop
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# X-Forwarded-For/-Proto are believed from private-network peers (the proxy container), not from
# the public internet; name your proxy's address or network instead where you can (docs/deploy.md).
ENV PARTNERLOOP_FORWARDED_ALLOW_IPS=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16
# serve migrates first (once, under a PostgreSQL advisory lock, so replicas may start together),
# then runs the API with several workers.
CMD ["sh", "-c", "exec partnerloop serve --host 0.0.0.0 --port 8000 --workers ${PARTNERLOOP_WORKERS:-2}"]
