# `make run` serves the bundled config.toml; `make test` installs what the tests need and runs
# every check. See README.md.

CARGO ?= cargo

.PHONY: run install test deps lint unit rules deploy bench load bench-catalog

# Installs the binary where cargo puts binaries (~/.cargo/bin, on the PATH with rustup), so the
# `indicator_exporter …` commands of README.md and docs/ work as written, then serves the bundled config.
run: install
	"$${CARGO_HOME:-$$HOME/.cargo}/bin/indicator_exporter" --config.file config.toml

install:
	$(CARGO) install --path . --locked --quiet

# unit last: its closing `test result` line is the run's verdict.
test: deps lint rules deploy unit

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

# The static binary, the container image, the systemd unit and the Kubernetes manifests, built
# and checked (scripts/check-deploy; root, Debian).
deploy:
	scripts/check-deploy

bench:
	$(CARGO) bench --bench pipeline

# Serving benchmark against node_exporter and a static server (about five minutes).
load:
	scripts/install-deps --bench
	benches/load.sh

# Catalogue benchmark: 1, 10 and 100 datasets of 10,000 series against node_exporter and a
# static server (about three minutes).
bench-catalog:
	scripts/install-deps --bench
	benches/catalog.sh
