# ciba-checkout: one image for the service (ROLE=api|worker|all) and the sandbox bank (node dist/sandbox/main.js).
# The build stage runs exactly what CI runs before the tests: `npm ci`, `npm run build`.

ARG NODE_VERSION=20.20

# ---- build: compile TypeScript, copy Lua scripts and static pages into dist/ ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies only, non-root ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# openssl only makes the sandbox bank's development certificates (src/sandbox/certs.ts).
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY catalog.json ./
# The demo's certificate directory, owned by `node` so a named volume mounted here is writable.
RUN mkdir -p /app/.demo/certs && chown -R node:node /app/.demo
USER node
EXPOSE 3000
# Liveness of the API (ROLE=api|all); slim images have no curl, so node asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/livez').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# A larger young generation: a worker's polls allocate many short-lived objects (README "Configuration").
CMD ["node", "--max-semi-space-size=32", "dist/main.js"]
