# Each target sets up its environment first (scripts/setup_env.sh): a fresh clone needs nothing else.
.PHONY: demo test test-all bench pictures

demo:  ## train the quick-start model on built-in data, validate it, write predictions
	bash scripts/demo.sh

test:  ## the default test suite (fast), doctests and ruff
	bash scripts/test.sh

test-all:  ## every test, the slow ones too
	bash scripts/test.sh -m "slow or not slow"

bench:  ## performance: throughput, callback overhead, scaling, memory, start-up (about 15 minutes)
	bash scripts/bench.sh

pictures:  ## regenerate the README's pictures (docs/pictures/*.png) by training the lessons (about a minute)
	bash scripts/pictures.sh
