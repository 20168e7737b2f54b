# The two commands of the README, plus the set-up they both run first (idempotent), and `lint`:
# the checks of the layer contracts, the linter and the type check that .ci/run runs before the
# tests (the tests run them too: test/test_lint.py, test_layers.py, test_types.py).
.PHONY: setup demo test lint bench clean

setup:
	./scripts/setup.sh

demo: setup
	. ./env.sh && stir-ros demo

test: setup
	. ./env.sh && python -m pytest

lint: setup
	. ./env.sh && ruff check . && lint-imports --no-cache && mypy

clean:
	rm -rf .ros_ws .stamps env.sh
