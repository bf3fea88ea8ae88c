# newsletter: `make send` and `make test` are all a new user needs; every target sets up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NL     := $(BIN)/newsletter
# The issue for pull/build/check: the newest issues/YYYY-MM.md unless ISSUE=... is given.
ISSUE  ?= $(shell ls issues 2>/dev/null | grep -E '^[0-9]{4}-[0-9]{2}\.md$$' | sort | tail -n 1 | cut -c1-7)

.DEFAULT_GOAL := help
.PHONY: help setup new pull build check preview send status serve test test-pg faults bench messages archive report lint lint-email golden clean node-tools

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'
	@echo "  (ISSUE=YYYY-MM picks the issue; default: the newest draft, now $(ISSUE))"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# axe-core and doiuse-email for the email checks (package.json); skipped where npm is missing.
node_modules/.installed-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-tools:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory node_modules/.installed-stamp; \
	else echo "npm not found: the email lint and axe-core tests will be skipped"; fi

setup: $(STAMP) ## only set up .venv (a sender or web host: then .venv/bin/newsletter)

new: $(STAMP) ## start next month's draft from issues/_template.md (NEXT=YYYY-MM for another)
	$(NL) new $(NEXT)

pull: $(STAMP) ## fetch the feeds into issues/ISSUE.items.yaml
	$(NL) pull $(ISSUE)

build: $(STAMP) ## write build/ISSUE/: email.html, email.txt, sample.eml, screenshots
	$(NL) build $(ISSUE)

check: $(STAMP) ## report every problem with the issue (exit 1 on errors)
	$(NL) check $(ISSUE)

preview: $(STAMP) ## a local page showing ISSUE as subscribers get it; follows saved edits (PORT=8090)
	$(NL) preview $(ISSUE) --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8090)

send: $(STAMP) ## import the CSV files listed in newsletter.toml, then send every due issue (safe any time)
	$(NL) send

status: $(STAMP) ## ledger counts by state; failed and unknown addresses
	$(NL) status

serve: $(STAMP) ## run the web app on HOST:PORT (needs NEWSLETTER_SECRET; SERVE_FLAGS=--dev to try it)
	$(NL) serve --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8080) $(SERVE_FLAGS)

# make test: the whole suite on SQLite, then the store, send, fault and web suites again on
# PostgreSQL (tests/pg_engine.py; a throwaway cluster per worker). Many tests wait on sockets
# and subprocesses, so more workers than cores pay: TEST_WORKERS=0 runs in this process alone.
# The PostgreSQL pass runs even when the SQLite pass failed; either failing fails the target.
TEST_WORKERS ?= 3
PG_SUITES    := tests/store tests/deliver tests/web

test: $(STAMP) node-tools ## the whole suite on SQLite, then the store, send and web suites on PostgreSQL
	@status=0; $(BIN)/python -m pytest -q -n $(TEST_WORKERS) || status=1; \
	$(MAKE) --no-print-directory test-pg || status=1; exit $$status

test-pg: $(STAMP) node-tools ## only the store, send and web suites on PostgreSQL (needs initdb)
	NEWSLETTER_TEST_ENGINE=postgresql PYTHONPATH=tests $(BIN)/python -m pytest -q \
		-n $(TEST_WORKERS) -p pg_engine $(PG_SUITES)

faults: $(STAMP) ## the fault suite in its long form, ending with the table of cases
	FAULTS_FULL=1 $(BIN)/python -m pytest -q tests/deliver/test_faults.py tests/deliver/test_crash.py \
		tests/deliver/test_send.py tests/deliver/test_transport.py $(wildcard tests/deliver/test_time.py tests/test_hostile.py)

bench: $(STAMP) ## throughput into a loopback SMTP sink as ratios to the wire, beside smtplib and mailmerge (N=100000 for more)
	$(BIN)/python bench/run.py --n $(or $(N),10000)

archive: $(STAMP) ## write public/: every sent issue as a static site with Atom feeds
	$(NL) archive

report: $(STAMP) ## the figures of a sent ISSUE per edition: a table, and build/ISSUE/report.html
	$(NL) report $(ISSUE)

messages: $(STAMP) ## extract the strings to translate and update newsletter/locale/*/messages.po
	$(BIN)/pybabel extract -F babel.cfg -c TRANSLATORS: --no-location --sort-output \
		--project newsletter -o newsletter/locale/messages.pot .
	$(BIN)/pybabel update -i newsletter/locale/messages.pot -d newsletter/locale --no-fuzzy-matching

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check newsletter tests
	$(BIN)/mypy newsletter

lint-email: $(STAMP) node-tools ## build every edition of ISSUE and lint its HTML against caniemail data
	@set -e; files=""; for f in issues/$(ISSUE).md issues/$(ISSUE).*.md; do \
	  case $$f in *.items.yaml|*'*'*) continue;; esac; \
	  ed=$$(basename $$f .md); $(NL) build $$ed --out build/$$ed >/dev/null; files="$$files build/$$ed/email.html"; \
	done; node tools/lint-email.mjs templates/email-features.json $$files

golden: $(STAMP) ## refresh the golden files of the rendered sample issue after a deliberate change
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/compose/test_render.py -k golden

clean: ## remove build output and the virtual environment
	rm -rf build public $(VENV) .pytest_cache
