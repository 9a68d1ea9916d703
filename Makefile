# A thin front for CMake and the scripts; CMakeLists.txt is the build.
.PHONY: all test demo python clean
all:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
test:
	bash scripts/test.sh
demo:
	bash scripts/demo.sh
python:
	python3 -m pip install --no-build-isolation .
clean:
	rm -rf build
