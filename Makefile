# The two commands of the README, plus the set-up they both run first (idempotent).
.PHONY: setup demo test bench clean

setup:
	./scripts/setup.sh

demo: setup
	. ./env.sh && stir-ros demo

test: setup
	. ./env.sh && python -m pytest

clean:
	rm -rf .ros_ws .stamps env.sh
