# The two commands in README.md: `make run` and `make test`. The logic lives in
# scripts/ so that it can be read and run without make.
.PHONY: run test clean

# Run the server in the foreground with etc/b2bua.toml (override with CONFIG=...).
run:
	bash scripts/run.sh

# Install into .venv (if needed), then ruff, mypy, lint-imports and pytest.
# Pass pytest arguments with ARGS, e.g. make test ARGS='-k parser -x'.
test:
	bash scripts/test.sh $(ARGS)

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
