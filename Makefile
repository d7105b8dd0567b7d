# Thin wrapper over CMake. `make`, `make test`, `make demo`, `make bench`, `make install`.
#   build/       Release, no sanitizers: make, make install, make package, make demo, make bench
#   build-asan/  ASan+UBSan: make test, make check (the tree every ctest run uses)
BUILD      ?= build
TEST_BUILD ?= build-asan
BUILD_TYPE ?= Release
SANITIZE   ?= OFF
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
DESTDIR    ?=
CMAKE_FLAGS ?=

.PHONY: all deps configure build test check demo bench install package clean format

all: build

deps:
	bash deploy/install-deps.sh

configure:
	cmake -S . -B $(BUILD) -DPW_SANITIZE=$(SANITIZE) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Installs what is missing, builds warning-free with ASan+UBSan in $(TEST_BUILD), runs every test.
test: deps
	$(MAKE) build BUILD=$(TEST_BUILD) SANITIZE=ON BUILD_TYPE=RelWithDebInfo
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The unit tests alone (no other process, no network): seconds after an incremental build.
# Labels: unit, integration (in-process Kafka, or azure-sim forked), e2e (the real programs).
check:
	$(MAKE) build BUILD=$(TEST_BUILD) SANITIZE=ON BUILD_TYPE=RelWithDebInfo
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

# Runs the main job on the embedded stack (kafka-mock + azure-sim + worker).
demo: deps
	$(MAKE) build
	bash deploy/demo.sh $(BUILD)

# Benchmarks use the optimised build without sanitizers (the default tree).
bench: deps
	$(MAKE) build
	bash bench/run.sh $(BUILD)

# The programs, schemas, example configuration and --help texts under $(DESTDIR)$(PREFIX)
# (the layout: CMakeLists.txt, "Install layout").  The prefix is chosen here, not when
# configuring: the installed programs find their files from their own path.
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

# A .deb (CPack) in $(BUILD)/package/, installing under /usr.
package: build
	cd $(BUILD) && cpack -G DEB

format:
	find include worker tools tests bench fuzz -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf build build-asan build-bench build-fuzz
