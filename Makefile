# `make run` serves the bundled config.toml; `make test` installs what the tests need and runs
# every check. See README.md.

CARGO ?= cargo

.PHONY: run test deps lint unit rules bench load

run:
	$(CARGO) run --release -- --config.file config.toml

# unit last: its closing `test result` line is the run's verdict.
test: deps lint rules unit

deps:
	scripts/install-deps

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --locked --quiet

unit:
	$(CARGO) test --locked

rules:
	promtool check rules prometheus/rules/*.yml
	promtool test rules prometheus/rules/tests/*.yml

bench:
	$(CARGO) bench --bench pipeline

# Serving benchmark against node_exporter and a static server (about five minutes).
load:
	scripts/install-deps --bench
	benches/load.sh
