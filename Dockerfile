# One image for all three services; docker-compose.yml picks the service with
# `disposisi intake|router|sla`. Configuration comes from DISPOSISI_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY services/ services/
RUN pip install --no-cache-dir .

# Run as an unprivileged user; the services only need to read the installed package.
RUN useradd --create-home --uid 10001 --user-group disposisi
USER disposisi

# intake, sla, router (DISPOSISI_INTAKE_PORT, DISPOSISI_SLA_PORT, DISPOSISI_ROUTER_PORT).
EXPOSE 8080 8081 8082

CMD ["disposisi", "intake"]
