# Thin wrapper over CMake. `make`, `make test`, `make demo`, `make bench`.
BUILD    ?= build
SANITIZE ?= ON
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test check demo bench clean format

all: build

deps:
	bash deploy/install-deps.sh

configure:
	cmake -S . -B $(BUILD) -DPW_SANITIZE=$(SANITIZE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Installs what is missing, builds warning-free with ASan+UBSan, runs every test.
test: deps
	$(MAKE) build SANITIZE=ON
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The unit tests alone (no other process, no network): seconds after an incremental build.
# Labels: unit, integration (in-process Kafka, or azure-sim forked), e2e (the real programs).
check: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

# Runs the main job on the embedded stack (kafka-mock + azure-sim + worker).
demo: deps
	$(MAKE) build
	bash deploy/demo.sh $(BUILD)

# Benchmarks use an optimised build without sanitizers.
bench: deps
	$(MAKE) build BUILD=build-bench SANITIZE=OFF CMAKE_FLAGS=-DCMAKE_BUILD_TYPE=Release
	bash bench/run.sh build-bench

format:
	find include worker tools tests bench fuzz -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf build build-bench build-fuzz
