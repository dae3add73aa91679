# syntax=docker/dockerfile:1
# The relay (and, with another command, the mock upstream: node dist/lib/mock/main.js).
# Two stages: the build needs TypeScript and the dev dependencies; the image that runs needs
# neither, so it installs production dependencies only and copies the compiled output in.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so editing the source does not invalidate the npm ci layer.
# --ignore-scripts: the package's `prepare` builds, and the sources are not here yet.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
# public/ is optional in the source tree; the final stage copies it either way.
RUN npm run build && mkdir -p public

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: nothing in the production tree needs an install script, and skipping them
# keeps a compromised dependency's postinstall out of the image.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/public ./public
# The node image's unprivileged user: the relay needs no privilege (it listens above 1024).
USER node
EXPOSE 3000
# Node 20 has fetch; no curl in a slim image. /healthz is liveness (README "Endpoints").
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, so open streams close with `shutdown`.
CMD ["node", "dist/server.js"]
