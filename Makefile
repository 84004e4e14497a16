# The Makefile only orchestrates; the work lives in npm scripts and TypeScript.
PORT ?= 8787
SIZE ?= small
SEED ?= 1
DATABASE_URL ?= file:.data/dev.db
export PORT DATABASE_URL

NPM_STAMP := node_modules/.package-lock.json

.PHONY: setup deps keys db-migrate seed dev test lint format bench

## setup: npm deps, the dev key pair, migrations (idempotent)
setup: deps keys db-migrate

deps: $(NPM_STAMP)
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

keys: deps
	@npm run --silent keys

db-migrate: deps
	@npm run --silent db:migrate

## seed: replace the data in DATABASE_URL with a fixture (SIZE=small|bench|large, SEED=n)
seed: deps
	@npm run --silent seed -- --size $(SIZE) --seed $(SEED)

## dev: the app on 127.0.0.1:$(PORT), embedded DB, seeded with the small fixture when empty
dev: setup
	@npm run --silent seed -- --size small --if-empty
	@npm run --silent dev

## test: unit + integration tests (memory, file and a real sqld)
test: deps
	npm test

## lint: formatter/linter (biome) and the type checker
lint: deps
	npx biome check .
	npx tsc --noEmit -p .

format: deps
	npx biome check --write .

## bench: microbenchmarks + load scenarios -> the findings report (results/latest)
##   PROFILE=quick|full|smoke  SUITE=micro,members,burst,zipf,webhooks,ws  PRESET=batch,...
##   DB=file|sqld  RTT=<ms> (DB=sqld: a relay delays every query by this round trip)
bench: deps keys
	@PROFILE="$(PROFILE)" SUITE="$(SUITE)" PRESET="$(PRESET)" DB="$(DB)" RTT="$(RTT)" npm run --silent bench
