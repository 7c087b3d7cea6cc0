# One hdx node. Configure with HDX_* variables (see README); data lives in /data, and
# invites shared with partner nodes in /invites (scripts/docker-entrypoint).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY proto proto
COPY node node
COPY exchange exchange
COPY adapters adapters
COPY cli cli
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system --home /data hdx \
    && mkdir /data /invites && chown hdx /data /invites
COPY scripts/docker-entrypoint /usr/local/bin/hdx-entrypoint
USER hdx
ENV HDX_DATA_DIR=/data
EXPOSE 50051 50061
ENTRYPOINT ["hdx-entrypoint"]
